package bench

import (
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/warmpool/warmpool"
)

// httpClientKeys is cfg's http_client block as its YAML keys and values,
// durations as Go durations ("30s"): what the report shows as a warmpool
// mode's effective settings. The keys follow from the field names, as
// warmpool.Config documents them (MaxKeepaliveConnections is
// max_keepalive_connections, EnableHTTP2 enable_http2); a test feeds the
// result back through warmpool.ParseConfig, which rejects an unknown key,
// and checks it gets cfg back. The auth block, which may hold a token, is
// left out.
func httpClientKeys(cfg warmpool.Config) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(cfg)
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if !f.IsExported() || fv.Kind() == reflect.Struct {
			continue
		}
		val := fv.Interface()
		if d, ok := val.(time.Duration); ok {
			val = d.String()
		}
		out[snakeCase(f.Name)] = val
	}
	return out
}

// snakeCase turns a Go field name into a config key: an underscore goes
// before each word, a word being a capital followed by lower case, or a run
// of capitals and digits (an acronym: HTTP2, H2C).
func snakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || (unicode.IsUpper(prev) || unicode.IsDigit(prev)) && nextLower {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
