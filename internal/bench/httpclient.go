package bench

import (
	"strconv"

	"github.com/warmpool/warmpool"
)

// httpClientKeys is cfg's http_client block as its YAML keys and values
// (warmpool.Config.Settings), numbers and booleans typed so that the JSON
// report carries them as such, durations as Go durations ("30s"): what the
// report shows as a warmpool mode's effective settings. The auth block,
// which may hold a token, is left out by Settings.
func HTTPClientKeys(cfg warmpool.Config) map[string]any {
	out := map[string]any{}
	for k, v := range cfg.Settings() {
		out[k] = typed(v)
	}
	return out
}

// typed is v as an int64, float64 or bool if it is one, else as it is.
func typed(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return v
}
