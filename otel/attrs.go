package warmpoolotel

import (
	"go.opentelemetry.io/otel/attribute"

	"github.com/warmpool/warmpool/internal/httpconv"
)

// hostAttrs are the server.address and server.port attributes of a dialed
// address.
type hostAttrs struct {
	address attribute.KeyValue
	port    attribute.KeyValue
	hasPort bool
}

// parseHost splits warmpool's dialed address ("host:port", "[::1]:443")
// into server.address and server.port. An address without a valid port
// keeps its whole text as server.address and has no server.port.
func parseHost(addr string) hostAttrs {
	host, port, ok := httpconv.SplitHost(addr)
	h := hostAttrs{address: attribute.String("server.address", host), hasPort: ok}
	if ok {
		h.port = attribute.Int("server.port", port)
	}
	return h
}

// kvs returns h's attributes followed by more.
func (h hostAttrs) kvs(more ...attribute.KeyValue) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 2+len(more))
	kv = append(kv, h.address)
	if h.hasPort {
		kv = append(kv, h.port)
	}
	return append(kv, more...)
}
