package bench

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"MaxKeepaliveConnections": "max_keepalive_connections", "EnableHTTP2": "enable_http2", "H2C": "h2c",
		"RetryBudgetMinPerSecond": "retry_budget_min_per_second", "HTTPClient": "http_client", "A": "a",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestHTTPClientKeysRoundTrip writes the keys as an http_client block and
// reads it back with warmpool.ParseConfig: every key must be one warmpool
// knows, and every value must come back as it was.
func TestHTTPClientKeysRoundTrip(t *testing.T) {
	cfg := warmpool.DefaultConfig()
	cfg.MaxConnections, cfg.MaxKeepaliveConnections, cfg.KeepaliveExpiry, cfg.H2C, cfg.RetryBackoffFactor = 7, 5, 1500*time.Millisecond, true, 0.25
	cfg.MaxConnectionAge, cfg.MaxResponseBytes = time.Minute, 12345
	keys := httpClientKeys(cfg)
	var y strings.Builder
	y.WriteString("http_client:\n")
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		v := keys[k]
		if s, ok := v.(string); ok {
			v = fmt.Sprintf("%q", s)
		}
		fmt.Fprintf(&y, "  %s: %v\n", k, v)
	}
	back, err := warmpool.ParseConfig([]byte(y.String()), "keys.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, y.String())
	}
	back.Auth, cfg.Auth = warmpool.AuthConfig{}, warmpool.AuthConfig{}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip: got %+v, want %+v", back, cfg)
	}
	if _, ok := keys["auth"]; ok {
		t.Error("the auth block is in the keys")
	}
}
