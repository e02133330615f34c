package warmpool

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
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

// setHeaders stores pairs as the headers setting f, failing each bad one;
// source names where they come from, pairs' lines refining it in a file.
func (l *configLoader) setHeaders(f *setting, pairs []headerPair, at func(line int) string) {
	h := map[string]string{}
	line := map[string]int{} // canonical name → line
	for _, hp := range pairs {
		key := f.fullKey() + "." + hp.name
		canon := http.CanonicalHeaderKey(hp.name)
		if why := headerProblem(hp.name); why != "" {
			l.fail(&ConfigError{Key: key, Allowed: why, Source: at(hp.line)})
			continue
		}
		if !validHeaderValue(hp.value) {
			l.fail(&ConfigError{Key: key, Allowed: headerValueAllowed, Source: at(hp.line)})
			continue
		}
		if first, dup := line[canon]; dup {
			why := "duplicate header"
			if first > 0 {
				why = fmt.Sprintf("duplicate header, first set on line %d", first)
			}
			l.fail(&ConfigError{Key: key, Allowed: why, Source: at(hp.line)})
			continue
		}
		h[canon], line[canon] = hp.value, hp.line
	}
	if len(h) == 0 {
		h = nil
	}
	*f.mapping(&l.c) = h
	if len(pairs) > 0 {
		l.origin[f.fullKey()] = at(pairs[0].line)
	}
}

// yamlHeaders applies the YAML value v of the headers setting f: a mapping of
// names to scalars, or null for none.
func (l *configLoader) yamlHeaders(f *setting, v *yaml.Node, at func(*yaml.Node) string) {
	atLine := func(line int) string { return at(&yaml.Node{Line: line}) }
	if yamlIsNull(v) {
		*f.mapping(&l.c) = nil
		l.origin[f.fullKey()] = at(v)
		return
	}
	if v.Kind != yaml.MappingNode {
		l.fail(&ConfigError{Key: f.fullKey(), Source: at(v), Allowed: headersAllowed})
		return
	}
	var pairs []headerPair
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := yamlDeref(v.Content[i]), yamlDeref(v.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			l.fail(&ConfigError{Key: f.fullKey(), Source: at(k), Allowed: "not a valid header name"})
		case val.Kind != yaml.ScalarNode || yamlIsNull(val):
			l.fail(&ConfigError{Key: f.fullKey() + "." + k.Value, Source: at(val), Allowed: "must be a header value, a string"})
		default:
			pairs = append(pairs, headerPair{name: k.Value, value: val.Value, line: k.Line})
		}
	}
	l.setHeaders(f, pairs, atLine)
}

// envHeaders applies the variable name, with value s, to the headers setting f.
func (l *configLoader) envHeaders(f *setting, name, s string) {
	source := func(int) string { return "env " + name }
	pairs, ok := splitHeaderList(s)
	if !ok {
		l.fail(&ConfigError{Key: f.fullKey(), Source: source(0), Allowed: headersEnvAllowed})
		return
	}
	l.setHeaders(f, pairs, source)
}
