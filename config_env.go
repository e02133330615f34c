package warmpool

import (
	"slices"
	"strings"
)

// envPrefix starts the name of every variable LoadConfig reads.
const envPrefix = "WARMPOOL_"

// otherEnvNames are the WARMPOOL_ variables that are not settings but that
// the warmpool command reads, so LoadConfig accepts them: the bearer token of
// post, bench and serve, and the upstream token of serve.
var otherEnvNames = []string{"WARMPOOL_TOKEN", "WARMPOOL_UPSTREAM_TOKEN"}

// environMap turns os.Environ's "NAME=value" list into a map.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && name != "" {
			m[name] = value
		}
	}
	return m
}

// applyEnv overrides c with the WARMPOOL_* variables of env, as LoadConfig
// does, without filling in defaults or validating.
func applyEnv(c Config, env map[string]string) (Config, error) {
	l := newConfigLoader(c)
	l.env(env)
	return l.c, joinConfigErrors(l.errs)
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

// unknownEnv describes a variable LoadConfig does not know, suggesting the
// closest known one when it is near enough to be a likely typo.
func unknownEnv(name string, known []string) string {
	if best := closest(name, known, max(1, len(strings.TrimPrefix(name, envPrefix))/3)); best != "" {
		return "unknown variable; did you mean " + best + "?"
	}
	return "unknown variable; LoadConfig reads WARMPOOL_<KEY> for the keys of http_client, and WARMPOOL_AUTH_<KEY> for those of auth"
}
