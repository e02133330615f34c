package warmpool

import (
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

// unknownEnv describes a variable LoadConfig does not know, suggesting the
// closest known one when it is near enough to be a likely typo.
func unknownEnv(name string, known []string) string {
	if best := closest(name, known, max(1, len(strings.TrimPrefix(name, envPrefix))/3)); best != "" {
		return "unknown variable; did you mean " + best + "?"
	}
	return "unknown variable; LoadConfig reads WARMPOOL_<KEY> for the keys of http_client, and WARMPOOL_AUTH_<KEY> for those of auth"
}
