// Package loopback tells whether a host or address is this machine's own:
// the one definition of "loopback" for the token's plain-http rule, the
// reference server's listen check and the bench's simulated network.
package loopback

import "net"

// Host reports whether host (a name or an IP literal, without port or
// brackets) is "localhost" or a loopback IP (127.0.0.0/8, ::1).
func Host(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1": // the common cases, without parsing
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr reports whether the host of addr ("host:port") is loopback; it fails
// if addr has no port.
func Addr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	return Host(host), nil
}
