package bench

import (
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

// TestHTTPClientKeys checks the report's http_client block: every key of
// warmpool's settings, numbers and booleans typed, durations as written.
func TestHTTPClientKeys(t *testing.T) {
	cfg := warmpool.DefaultConfig()
	cfg.MaxConnections, cfg.KeepaliveExpiry, cfg.H2C, cfg.RetryBackoffFactor = 7, 1500*time.Millisecond, true, 0.25
	keys := HTTPClientKeys(cfg)
	for k, want := range map[string]any{
		"max_connections": int64(7), "keepalive_expiry": "1.5s", "h2c": true, "retry_backoff_factor": 0.25,
		"enable_http2": true, "max_retries": int64(3),
	} {
		if got := keys[k]; got != want {
			t.Errorf("%s: got %#v, want %#v", k, got, want)
		}
	}
	if n := len(cfg.Settings()); len(keys) != n {
		t.Errorf("%d keys, want all %d of warmpool's settings", len(keys), n)
	}
	if _, ok := keys["auth"]; ok {
		t.Error("the auth block is in the keys")
	}
}
