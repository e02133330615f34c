// Package redact shows URLs without what may carry credentials: the one
// copy of that rule, for the library's errors and the tooling
// (cmd/warmpool, internal/bench).
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
