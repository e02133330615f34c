package warmpool

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadConfig returns the defaults, overridden by the http_client and auth
// blocks of the YAML file at path, overridden in turn by WARMPOOL_*
// environment variables; an empty variable counts as unset. A
// WARMPOOL_AUTH_TYPE that changes auth.type replaces the file's auth block
// as a whole, as its other keys belong to the old type. With path "" only
// the defaults and the environment apply.
//
// Other top-level keys of the file are ignored, so the blocks can live in a
// larger application config, except a near miss of http_client or auth (such
// as httpClient, http-client or HTTP_CLIENT), which is an error. A file with
// no http_client block, an empty one included, is not an error, but LoadConfig
// logs that at Info level through slog.Default, naming the file, since the
// defaults then apply. A non-empty WARMPOOL_ variable that LoadConfig does not
// read is an error too, except those it knows others to read: WARMPOOL_TOKEN
// and WARMPOOL_UPSTREAM_TOKEN (the warmpool command), and the variable auth.env
// names.
//
// The result is validated. Each mistake is a *ConfigError naming its file and
// line or its variable; all of them are reported at once, in one error that
// joins them (errors.Join), one a line, sorted by line, the environment's
// last. errors.As finds the first; one mistake is returned as it is.
func LoadConfig(path string) (Config, error) {
	l := newConfigLoader(Config{})
	hasBlock := false
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("warmpool: load config: %w", err)
		}
		hasBlock = l.yaml(data, path)
	}
	l.env(environMap(os.Environ()))
	c, err := l.result()
	if err == nil && path != "" && !hasBlock {
		slog.Info("warmpool: the config file has no http_client block; using the defaults", "file", path)
	}
	return c, err
}

// ParseConfig is LoadConfig for YAML already in memory, without the
// environment and without the log line. source names the data in errors,
// usually its file name.
func ParseConfig(data []byte, source string) (Config, error) {
	l := newConfigLoader(Config{})
	l.yaml(data, source)
	return l.result()
}

// configLoader builds a Config from layers, collecting every mistake, and
// remembers where each key was set, so that an error Validate finds in the
// result can still name its source.
type configLoader struct {
	c      Config
	origin map[string]string // key → source
	errs   []*ConfigError
	failed map[string]bool // keys with an error in errs
}

func newConfigLoader(c Config) *configLoader {
	return &configLoader{c: c, origin: map[string]string{}, failed: map[string]bool{}}
}

// fail records a mistake.
func (l *configLoader) fail(e *ConfigError) {
	l.errs = append(l.errs, e)
	if e.Key != "" {
		l.failed[e.Key] = true
	}
}

func (l *configLoader) set(f *setting, value, source string) {
	if !f.parse(&l.c, value) {
		l.fail(&ConfigError{Key: f.fullKey(), Value: f.shown(value), Allowed: f.allowed, Source: source})
		return
	}
	l.origin[f.fullKey()] = source
}

// yaml applies the http_client and auth blocks of data; name is the file name
// for errors. It reports whether data has an http_client block.
func (l *configLoader) yaml(data []byte, name string) (hasBlock bool) {
	at := func(n *yaml.Node) string {
		if name == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("%s:%d", name, n.Line)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.fail(&ConfigError{Source: name, Allowed: "not valid YAML: " + err.Error()})
		return false
	}
	if len(doc.Content) == 0 || yamlIsNull(yamlDeref(doc.Content[0])) {
		return false // empty, or only comments
	}
	root := yamlDeref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		l.fail(&ConfigError{Source: at(doc.Content[0]), Allowed: "the top level must be a mapping"})
		return false
	}
	for i := 0; i < len(root.Content); i += 2 {
		k := yamlDeref(root.Content[i])
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if block := nearBlockKey(k.Value); block != "" {
			l.fail(&ConfigError{Key: k.Value, Source: at(root.Content[i]), Allowed: "unknown top-level key; did you mean " + block + "?"})
		}
	}
	hasBlock = l.yamlBlock(root, configBlockKey, settings, at)
	l.yamlBlock(root, authBlockKey, authSettings, at)
	return hasBlock
}

// nearBlockKey returns the block key that key is a near miss of, or "" if
// there is none or key is that block key itself: the same but for case and
// separators (httpClient, http-client), or, for the longer http_client, a
// typo of up to two letters (http_clients, htp_client).
func nearBlockKey(key string) string {
	norm := strings.NewReplacer("_", "", "-", "", " ", "", ".", "")
	k := norm.Replace(strings.ToLower(key))
	for _, block := range []string{configBlockKey, authBlockKey} {
		b := norm.Replace(block)
		if key != block && (k == b || len(b) >= 8 && editDistance(k, b) <= 2) {
			return block
		}
	}
	return ""
}

// yamlBlock applies the block name of the top-level mapping root, whose keys
// are those of table, and reports whether root has the block.
func (l *configLoader) yamlBlock(root *yaml.Node, name string, table []setting, at func(*yaml.Node) string) (found bool) {
	var blockAt, block *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := yamlDeref(root.Content[i]); k.Kind == yaml.ScalarNode && k.Value == name {
			if blockAt != nil {
				l.fail(&ConfigError{Key: name, Source: at(root.Content[i]), Allowed: fmt.Sprintf("duplicate key, first set on line %d", blockAt.Line)})
				continue
			}
			blockAt, block = root.Content[i], root.Content[i+1]
		}
	}
	if block == nil || yamlIsNull(yamlDeref(block)) {
		return block != nil
	}
	if yamlDeref(block).Kind != yaml.MappingNode {
		l.fail(&ConfigError{Key: name, Value: yamlDeref(block).Value, Source: at(block), Allowed: "must be a mapping of settings"})
		return true
	}
	seen := map[string]int{}
	content := yamlDeref(block).Content
	for i := 0; i+1 < len(content); i += 2 {
		k, v := yamlDeref(content[i]), yamlDeref(content[i+1])
		f := settingByKey(table, k.Value)
		key := name + "." + k.Value
		switch {
		case k.Kind != yaml.ScalarNode || f == nil:
			l.fail(&ConfigError{Key: key, Source: at(content[i]), Allowed: unknownConfigKey(table, k.Value)})
			continue
		case seen[k.Value] != 0:
			l.fail(&ConfigError{Key: key, Source: at(content[i]), Allowed: fmt.Sprintf("duplicate key, first set on line %d", seen[k.Value])})
			continue
		}
		seen[k.Value] = content[i].Line
		switch {
		case f.mapping != nil:
			l.yamlHeaders(f, v, at)
		case v.Kind == yaml.SequenceNode && f.list != nil:
			l.setList(f, v, at)
		case v.Kind != yaml.ScalarNode:
			l.fail(&ConfigError{Key: key, Source: at(content[i+1]), Allowed: f.allowed})
		case f.block != "" && yamlIsNull(v):
			l.set(f, "", at(content[i+1])) // "~" or "null" is not a path or a token
		default:
			l.set(f, v.Value, at(content[i+1]))
		}
	}
	return true
}

// setList applies a YAML list of scalars to a setting that takes one.
func (l *configLoader) setList(f *setting, seq *yaml.Node, at func(*yaml.Node) string) {
	items := make([]string, 0, len(seq.Content))
	for _, n := range seq.Content {
		if n = yamlDeref(n); n.Kind != yaml.ScalarNode || yamlIsNull(n) {
			l.fail(&ConfigError{Key: f.fullKey(), Source: at(n), Allowed: f.allowed})
			return
		}
		items = append(items, n.Value)
	}
	if !f.list(&l.c, items) {
		l.fail(&ConfigError{Key: f.fullKey(), Source: at(seq), Allowed: f.allowed})
		return
	}
	l.origin[f.fullKey()] = at(seq)
}

// result fills in defaults and validates, naming the source of each bad key,
// and returns every mistake found. A problem Validate finds with a key that
// already failed to parse, or that follows from it, is left out.
func (l *configLoader) result() (Config, error) {
	c := l.c.WithDefaults()
	for _, ce := range c.problems() {
		auth := strings.HasPrefix(ce.Key, authBlockKey+".")
		if l.failed[ce.Key] || auth && l.failed[authBlockKey+".type"] ||
			ce.Key == configBlockKey+".max_keepalive_connections" && l.failed[configBlockKey+".max_connections"] {
			continue
		}
		ce.Source = l.origin[ce.Key]
		if ce.Source == "" && auth {
			ce.Source = l.origin[authBlockKey+".type"] // a key the type requires is missing
		}
		l.errs = append(l.errs, ce)
	}
	if err := joinConfigErrors(l.errs); err != nil {
		return Config{}, err
	}
	return c, nil
}

// yamlDeref follows YAML aliases to the node they name.
func yamlDeref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func yamlIsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func settingByKey(table []setting, key string) *setting {
	for i := range table {
		if table[i].key == key {
			return &table[i]
		}
	}
	return nil
}

// unknownConfigKey describes a key not in table, suggesting the closest known
// one when it is near enough to be a likely typo.
func unknownConfigKey(table []setting, key string) string {
	keys := make([]string, len(table))
	for i := range table {
		keys[i] = table[i].key
	}
	if best := closest(strings.ToLower(key), keys, len(key)/3); best != "" {
		return "unknown key, did you mean " + best + "?"
	}
	return "unknown key"
}

// closest returns the candidate nearest to s, if at most maxDist edits away.
func closest(s string, candidates []string, maxDist int) string {
	best, bestDist := "", maxDist+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// env applies the WARMPOOL_* variables of env, and reports each non-empty
// WARMPOOL_ variable it does not know.
func (l *configLoader) env(env map[string]string) {
	if v := env["WARMPOOL_AUTH_TYPE"]; v != "" && v != l.c.Auth.Type {
		// The file's other auth keys belong to its type: drop them.
		l.c.Auth = AuthConfig{}
		for key := range l.origin {
			if strings.HasPrefix(key, authBlockKey+".") {
				delete(l.origin, key)
			}
		}
	}
	known := slices.Clone(otherEnvNames)
	for _, table := range [][]setting{settings, authSettings} {
		for i := range table {
			name := table[i].envName()
			known = append(known, name)
			switch v := env[name]; {
			case v == "":
			case table[i].mapping != nil:
				l.envHeaders(&table[i], name, v)
			default:
				l.set(&table[i], v, "env "+name)
			}
		}
	}
	var unknown []string
	for name, v := range env {
		if strings.HasPrefix(name, envPrefix) && v != "" && !slices.Contains(known, name) && name != l.c.Auth.Env {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		l.fail(&ConfigError{Source: "env " + name, Allowed: unknownEnv(name, known)})
	}
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
