package externalapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestComplete(t *testing.T) {
	s, err := Start(Config{Delay: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"a prompt", `{"prompt":"why pool?"}`, 200, `"text":"You asked \"why pool?\" (2 words).`},
		{"no prompt", `{"prompt":"  "}`, 400, "want"},
		{"not JSON", `why?`, 400, "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Post(s.URL()+"/v1/complete", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.want) {
				t.Errorf("got %d %s, want %d with %s", resp.StatusCode, b, tt.code, tt.want)
			}
		})
	}
	if s.Requests() != 3 || s.Accepted() != 1 {
		t.Errorf("requests %d on %d connections, want 3 on 1", s.Requests(), s.Accepted())
	}
}
