package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/warmpool/warmpool/internal/refserver"
)

// TestServePoolPage: serve mounts the pool page, with the -upstream
// client's figures on it.
func TestServePoolPage(t *testing.T) {
	upstream := newRefserver(t, refserver.Options{})
	t.Setenv("WARMPOOL_UPSTREAM_TOKEN", "")
	base, _, stop := startServe(t, "-upstream", upstream.URL()+"/answer")
	const calls = 3
	for i := range calls {
		if code, body := httpDo(t, http.MethodPost, base+"/answer", fmt.Sprintf(`{"question":"q%d"}`, i)); code != http.StatusOK {
			t.Fatalf("POST /answer: %d %s", code, body)
		}
	}
	code, page := httpDo(t, http.MethodGet, base+"/debug/warmpool/", "")
	if code != http.StatusOK || !strings.Contains(page, "warmpool pool") || !strings.Contains(page, upstream.Addr()) {
		t.Errorf("GET /debug/warmpool/: %d, want 200 and the page naming the upstream %s:\n%.400s", code, upstream.Addr(), page)
	}
	code, body := httpDo(t, http.MethodGet, base+"/debug/warmpool/stats.json", "")
	var snap struct {
		Clients []struct {
			Stats struct {
				Requests int64 `json:"requests"`
			} `json:"stats"`
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(body), &snap); code != http.StatusOK || err != nil || len(snap.Clients) != 1 || snap.Clients[0].Stats.Requests != calls {
		t.Errorf("GET /debug/warmpool/stats.json: %d %v, want 200 and 1 client with %d requests:\n%.400s", code, err, calls, body)
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
}
