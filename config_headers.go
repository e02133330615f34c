package warmpool

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// The headers setting: default request headers, from a YAML mapping or from
// "Name: value" pairs in WARMPOOL_HEADERS. Its entries are checked one by one,
// so that each error names its header.
const (
	headersAllowed    = "must be a mapping of header names to values"
	headersEnvAllowed = `must be "Name: value" pairs, separated by newlines or ";"`
)

// headerPair is one header as written, with its line in the file (0 for a
// variable).
type headerPair struct {
	name, value string
	line        int
}

func headersSetting(key string, p func(*Config) *map[string]string) setting {
	return setting{
		key:     key,
		allowed: headersAllowed,
		parse: func(c *Config, s string) bool {
			pairs, ok := splitHeaderList(s)
			if !ok {
				return false
			}
			h := map[string]string{}
			for _, hp := range pairs {
				if headerProblem(hp.name) != "" || !validHeaderValue(hp.value) {
					return false
				}
				h[http.CanonicalHeaderKey(hp.name)] = hp.value
			}
			*p(c) = h
			return true
		},
		check:   func(c *Config) (string, bool) { return "", true }, // see headerProblems
		mapping: p,
	}
}

// splitHeaderList reads WARMPOOL_HEADERS: "Name: value" pairs separated by
// newlines or, if there is none, by ";". Spaces around names and values and
// empty pairs are dropped. It reports false for a pair without a name.
func splitHeaderList(s string) ([]headerPair, bool) {
	sep := ";"
	if strings.Contains(s, "\n") {
		sep = "\n"
	}
	var pairs []headerPair
	for item := range strings.SplitSeq(s, sep) {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, ":")
		if name = strings.TrimSpace(name); !ok || name == "" {
			return nil, false
		}
		pairs = append(pairs, headerPair{name: name, value: strings.TrimSpace(value)})
	}
	return pairs, true
}

// headerProblem says what is wrong with name as a default header, or "".
func headerProblem(name string) string {
	switch {
	case !validHeaderName(name):
		return "not a valid header name"
	case strings.EqualFold(name, "Authorization"):
		return "not allowed in headers: set the token in the auth block"
	case strings.EqualFold(name, "Host"):
		return "not allowed in headers: net/http takes Host from the request URL"
	}
	return ""
}

const headerValueAllowed = "not a valid header value: it holds a control character, such as a newline"

// validHeaderName reports whether name is an HTTP token (RFC 9110, 5.1).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v holds no control character but tab.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// headerProblems is Validate's check of Config.Headers, in name order.
func headerProblems(h map[string]string) []*ConfigError {
	var errs []*ConfigError
	first := map[string]string{} // canonical name → name as written
	for _, name := range slices.Sorted(maps.Keys(h)) {
		key := configBlockKey + ".headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch why := headerProblem(name); {
		case why != "":
			errs = append(errs, &ConfigError{Key: key, Allowed: why})
		case !validHeaderValue(h[name]):
			errs = append(errs, &ConfigError{Key: key, Allowed: headerValueAllowed})
		case first[canon] != "":
			errs = append(errs, &ConfigError{Key: key, Allowed: fmt.Sprintf("duplicate header, also set as %s", first[canon])})
		default:
			first[canon] = name
		}
	}
	return errs
}
