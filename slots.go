package warmpool

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// HTTP/1.1 serves one request per connection at a time, so max_connections
// connections can serve at most max_connections requests at once. Each host
// has that many request slots; a request takes one before it reaches
// net/http and gives it back when its body is done. A request that finds
// them all taken waits up to pool_timeout, then fails with ErrPoolTimeout
// having sent nothing. Waiting here, rather than in net/http's queue (which
// has no timeout), keeps pool timeouts from cancelling a request that was
// being handed a connection, which would cost the connection.
//
// HTTP/2 multiplexes requests on a connection, so hosts known to speak it
// take no slot: net/http's MaxConnsPerHost alone caps their connections.

// Protocols a host was last seen to speak.
const (
	protoUnknown int32 = iota
	protoHTTP1
	protoHTTP2
)

// acquire takes a request slot for req's host, waiting up to pool_timeout.
func (st *reqState) acquire(req *http.Request) error {
	h := st.host
	if h.proto.Load() == protoHTTP2 {
		return nil
	}
	select {
	case h.slots <- struct{}{}:
		st.slot = true
		return nil
	default:
	}

	c := st.c
	start := time.Now()
	h.waiting.Add(1)
	if f := c.hooks.WaitStart; f != nil {
		f(h.addr)
	}
	t := time.NewTimer(c.cfg.PoolTimeout)
	var err error
	select {
	case h.slots <- struct{}{}:
		st.slot = true
	case <-t.C:
		h.poolTimeouts.Add(1)
		err = fmt.Errorf("%w after %s: all %d connections to %s busy", ErrPoolTimeout, c.cfg.PoolTimeout, c.cfg.MaxConnections, h.addr)
	case <-req.Context().Done():
		err = context.Cause(req.Context())
	case <-c.done:
		err = ErrClosed
	}
	t.Stop()
	waited := time.Since(start)
	h.waiting.Add(-1)
	h.waits.Add(1)
	h.waitNanos.Add(int64(waited))
	if f := c.hooks.WaitEnd; f != nil {
		f(h.addr, waited, err)
	}
	return err
}

// releaseSlot gives back the request's slot, if it holds one.
func (st *reqState) releaseSlot() {
	if st.slot {
		st.slot = false
		<-st.host.slots
	}
}
