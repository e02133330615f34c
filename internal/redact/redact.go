// Package redact shows URLs without what may carry credentials. It is the
// one copy of that rule for the tooling (cmd/warmpool, internal/bench); the
// root package keeps its own unexported one, which it cannot import from
// here without exporting it.
package redact

import "net/url"

// URL is raw without user info, query and fragment, any of which may carry
// credentials; "<unparsable URL>" if raw does not parse.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}
