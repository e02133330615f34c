package warmpool

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadConfig returns the defaults, overridden by the http_client and auth
// blocks of the YAML file at path, overridden in turn by WARMPOOL_*
// environment variables; an empty variable counts as unset. A
// WARMPOOL_AUTH_TYPE that changes auth.type replaces the file's auth block
// as a whole, as its other keys belong to the old type. With path "" only
// the defaults and the environment apply. Other top-level keys of the file
// are ignored, so the blocks can live in a larger application config. The
// result is validated; a bad setting is reported as a *ConfigError naming its
// file and line or its variable.
func LoadConfig(path string) (Config, error) {
	l := newConfigLoader(baseConfig())
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("warmpool: load config: %w", err)
		}
		if err := l.yaml(data, path); err != nil {
			return Config{}, err
		}
	}
	if err := l.env(os.LookupEnv); err != nil {
		return Config{}, err
	}
	return l.result()
}

// ParseConfig is LoadConfig for YAML already in memory, without the
// environment. source names the data in errors, usually its file name.
func ParseConfig(data []byte, source string) (Config, error) {
	l := newConfigLoader(baseConfig())
	if err := l.yaml(data, source); err != nil {
		return Config{}, err
	}
	return l.result()
}

// applyEnv overrides c with the WARMPOOL_* variables that lookup finds.
func applyEnv(c Config, lookup func(string) (string, bool)) (Config, error) {
	l := newConfigLoader(c)
	err := l.env(lookup)
	return l.c, err
}

// configLoader builds a Config from layers and remembers where each key was set, so
// that an error Validate finds in the result can still name its source.
type configLoader struct {
	c      Config
	origin map[string]string // key → source
}

func newConfigLoader(c Config) *configLoader { return &configLoader{c: c, origin: map[string]string{}} }

func (l *configLoader) set(f *setting, value, source string) error {
	if !f.parse(&l.c, value) {
		return &ConfigError{Key: f.fullKey(), Value: f.shown(value), Allowed: f.allowed, Source: source}
	}
	l.origin[f.fullKey()] = source
	return nil
}

func (l *configLoader) env(lookup func(string) (string, bool)) error {
	if v, ok := lookup("WARMPOOL_AUTH_TYPE"); ok && v != "" && v != l.c.Auth.Type {
		// The file's other auth keys belong to its type: drop them.
		l.c.Auth = AuthConfig{}
		for key := range l.origin {
			if strings.HasPrefix(key, authBlockKey+".") {
				delete(l.origin, key)
			}
		}
	}
	for _, table := range [][]setting{settings, authSettings} {
		for i := range table {
			name := table[i].envName()
			if v, ok := lookup(name); ok && v != "" {
				if err := l.set(&table[i], v, "env "+name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// yaml applies the http_client block of data; name is the file name for errors.
func (l *configLoader) yaml(data []byte, name string) error {
	at := func(n *yaml.Node) string {
		if name == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("%s:%d", name, n.Line)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ConfigError{Source: name, Allowed: "not valid YAML: " + err.Error()}
	}
	if len(doc.Content) == 0 || yamlIsNull(yamlDeref(doc.Content[0])) {
		return nil // empty, or only comments
	}
	root := yamlDeref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return &ConfigError{Source: at(doc.Content[0]), Allowed: "the top level must be a mapping"}
	}
	if err := l.yamlBlock(root, configBlockKey, settings, at); err != nil {
		return err
	}
	return l.yamlBlock(root, authBlockKey, authSettings, at)
}

// yamlBlock applies the block name of the top-level mapping root, whose keys
// are those of table.
func (l *configLoader) yamlBlock(root *yaml.Node, name string, table []setting, at func(*yaml.Node) string) error {
	var blockAt, block *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := yamlDeref(root.Content[i]); k.Kind == yaml.ScalarNode && k.Value == name {
			if blockAt != nil {
				return &ConfigError{Key: name, Source: at(root.Content[i]), Allowed: fmt.Sprintf("duplicate key, first set on line %d", blockAt.Line)}
			}
			blockAt, block = root.Content[i], root.Content[i+1]
		}
	}
	if block == nil || yamlIsNull(yamlDeref(block)) {
		return nil
	}
	if yamlDeref(block).Kind != yaml.MappingNode {
		return &ConfigError{Key: name, Value: yamlDeref(block).Value, Source: at(block), Allowed: "must be a mapping of settings"}
	}
	seen := map[string]int{}
	content := yamlDeref(block).Content
	for i := 0; i+1 < len(content); i += 2 {
		k, v := yamlDeref(content[i]), yamlDeref(content[i+1])
		f := settingByKey(table, k.Value)
		key := name + "." + k.Value
		switch {
		case k.Kind != yaml.ScalarNode || f == nil:
			return &ConfigError{Key: key, Source: at(content[i]), Allowed: unknownConfigKey(table, k.Value)}
		case seen[k.Value] != 0:
			return &ConfigError{Key: key, Source: at(content[i]), Allowed: fmt.Sprintf("duplicate key, first set on line %d", seen[k.Value])}
		case v.Kind == yaml.SequenceNode && f.list != nil:
			seen[k.Value] = content[i].Line
			if err := l.setList(f, v, at); err != nil {
				return err
			}
			continue
		case v.Kind != yaml.ScalarNode:
			return &ConfigError{Key: key, Source: at(content[i+1]), Allowed: f.allowed}
		}
		seen[k.Value] = content[i].Line
		value := v.Value
		if f.block != "" && yamlIsNull(v) {
			value = "" // "~" or "null" is not a path or a token
		}
		if err := l.set(f, value, at(content[i+1])); err != nil {
			return err
		}
	}
	return nil
}

// setList applies a YAML list of scalars to a setting that takes one.
func (l *configLoader) setList(f *setting, seq *yaml.Node, at func(*yaml.Node) string) error {
	items := make([]string, 0, len(seq.Content))
	for _, n := range seq.Content {
		if n = yamlDeref(n); n.Kind != yaml.ScalarNode || yamlIsNull(n) {
			return &ConfigError{Key: f.fullKey(), Source: at(n), Allowed: f.allowed}
		}
		items = append(items, n.Value)
	}
	if !f.list(&l.c, items) {
		return &ConfigError{Key: f.fullKey(), Source: at(seq), Allowed: f.allowed}
	}
	l.origin[f.fullKey()] = at(seq)
	return nil
}

// result fills in defaults and validates, naming the source of a bad key.
func (l *configLoader) result() (Config, error) {
	c := l.c.withDefaults()
	if err := c.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Source == "" {
			ce.Source = l.origin[ce.Key]
			if ce.Source == "" && strings.HasPrefix(ce.Key, authBlockKey+".") {
				ce.Source = l.origin[authBlockKey+".type"] // a key the type requires is missing
			}
		}
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
	best, bestDist := "", len(key)/3+1
	for _, f := range table {
		if d := editDistance(strings.ToLower(key), f.key); d < bestDist {
			best, bestDist = f.key, d
		}
	}
	if best == "" {
		return "unknown key"
	}
	return "unknown key, did you mean " + best + "?"
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
