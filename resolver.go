package warmpool

import (
	"context"
	"net"
	"slices"
)

// Resolver turns a host name into its addresses. *net.Resolver satisfies it,
// so WithResolver(&net.Resolver{PreferGo: true}) or a resolver with a custom
// Dial works as it is; StaticResolver serves fixed lists.
type Resolver interface {
	// LookupHost returns the IP addresses of host, as strings. It must
	// honour ctx, which carries connection_timeout.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// WithResolver replaces the system resolver for the host names of request
// URLs. A name is resolved on the first request to it, again every
// resolve_interval and at once after a dial failure, and requests are spread
// over its addresses (see Config.Balancer). With a resolver given here, a
// name with one address is reached through that address too; with the
// system resolver, a name with one address goes the way net/http always
// took it (net/http resolves it when it dials).
func WithResolver(r Resolver) Option {
	return func(o *options) { o.resolver = r }
}

// StaticResolver returns a Resolver that answers from m, host name to
// addresses, as /etc/hosts does; a name not in m does not resolve. m is
// copied.
func StaticResolver(m map[string][]string) Resolver {
	r := make(staticResolver, len(m))
	for host, addrs := range m {
		r[host] = slices.Clone(addrs)
	}
	return r
}

type staticResolver map[string][]string

func (r staticResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addrs, ok := r[host]
	if !ok || len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(addrs), nil
}
