package warmpool

import (
	"context"
	"fmt"
	"time"
)

// HTTP/1.1 serves one request per connection at a time, so max_connections
// connections can serve at most max_connections requests at once. Each host
// has that many request slots; a request takes one before it reaches
// net/http and gives it back when its body is done. A request that finds
// them all taken waits up to pool_timeout, then fails with ErrPoolTimeout
// having sent nothing. net/http's own queue for MaxConnsPerHost has no
// timeout: a request in it waits for as long as its context allows, so
// without the slots pool_timeout could only be had by cancelling requests,
// which cannot tell a request still waiting from one being handed a
// connection (TestMaxConnectionsAndPoolTimeout fails without them).
//
// HTTP/2 multiplexes requests on a connection, so hosts known to speak it
// take no slot: net/http's MaxConnsPerHost and the server's stream limit
// alone decide, and nothing here holds an HTTP/2 request back.

// acquire takes a request slot for the attempt's host, waiting up to
// pool_timeout, or less if ctx (which carries request_timeout) ends first.
func (st *reqState) acquire(ctx context.Context) error {
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
	start := c.now()
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
	case <-ctx.Done():
		err = context.Cause(ctx)
	case <-c.done:
		err = ErrClosed
	}
	t.Stop()
	waited := c.now().Sub(start)
	h.waiting.Add(-1)
	h.waits.Add(1)
	h.waitNanos.Add(int64(waited))
	if f := c.hooks.WaitEnd; f != nil {
		f(h.addr, waited, err)
	}
	return err
}

// releaseSlot gives back the attempt's slot, if it holds one.
func (st *reqState) releaseSlot() {
	if st.slot {
		st.slot = false
		<-st.host.slots
	}
}
