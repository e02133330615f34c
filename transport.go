package warmpool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// roundTripper is the http.RoundTripper under Do, PostJSON and HTTPClient. Per
// request it adds the bearer token, bounds the attempt by request_timeout and
// the wait for a connection by pool_timeout, caps the response body at
// max_response_bytes, and accounts which connection served the request.
type roundTripper struct {
	c  *Client
	tr *http.Transport
}

// timeoutError is the cause of a request_timeout expiry. It matches
// context.DeadlineExceeded under errors.Is, like any deadline.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("warmpool: request_timeout (%s) exceeded", e.d)
}
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
func (e *timeoutError) Timeout() bool        { return true }

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	c := rt.c
	if !c.begin() {
		closeReqBody(req)
		return nil, ErrClosed
	}
	h := c.dialer.host(hostKey(req))
	n := h.inflight.Add(1)

	st := &reqState{c: c, host: h, limit: c.cfg.MaxResponseBytes}
	ctx := req.Context()
	ctx, st.cancel = context.WithTimeoutCause(ctx, c.cfg.RequestTimeout, c.timeoutErr)
	if n > int64(c.cfg.MaxConnections) {
		// Every connection to this host may be busy: bound the wait.
		var cancelPool context.CancelCauseFunc
		ctx, cancelPool = context.WithCancelCause(ctx)
		st.poolTimer = time.AfterFunc(c.cfg.PoolTimeout, func() { cancelPool(ErrPoolTimeout) })
		st.cancelPool = cancelPool
	}
	st.trace.GotConn = st.gotConn
	ctx = httptrace.WithClientTrace(ctx, &st.trace)

	r2 := req.WithContext(ctx)
	if c.tokens != nil && req.Response == nil && req.Header.Get("Authorization") == "" {
		// req.Response != nil means a redirect: net/http has already decided
		// whether the original Authorization may follow it.
		auth, err := c.authHeader(req.Context(), req.URL)
		if err != nil {
			st.finish()
			closeReqBody(req)
			return nil, err
		}
		r2.Header = cloneHeaderWith(req.Header, "Authorization", auth)
	}

	resp, err := rt.tr.RoundTrip(r2)
	if err != nil {
		err = st.explain(ctx, req, err)
		st.finish()
		return nil, err
	}
	if resp.ContentLength > st.limit {
		resp.Body.Close() // closes the connection: never drain without bound
		st.finish()
		return nil, fmt.Errorf("%w (Content-Length %d > %d)", ErrResponseTooLarge, resp.ContentLength, st.limit)
	}
	st.body = resp.Body
	resp.Body = st
	return resp, nil
}

// explain turns a context error caused by warmpool's own timers into the
// error a caller can branch on.
func (st *reqState) explain(ctx context.Context, req *http.Request, err error) error {
	if req.Context().Err() != nil {
		return err // the caller's context ended: their error, untouched
	}
	switch cause := context.Cause(ctx); {
	case cause == ErrPoolTimeout:
		st.host.poolTimeouts.Add(1)
		return fmt.Errorf("%w after %s: %d requests in flight to %s, max_connections %d",
			ErrPoolTimeout, st.c.cfg.PoolTimeout, st.host.inflight.Load(), st.host.addr, st.c.cfg.MaxConnections)
	case cause == st.c.timeoutErr:
		return cause
	}
	return err
}

// reqState follows one request from RoundTrip until its body is done. It is
// also the response body handed to the caller.
type reqState struct {
	c     *Client
	host  *hostPool
	conn  *conn
	trace httptrace.ClientTrace

	cancel     context.CancelFunc
	poolTimer  *time.Timer
	cancelPool context.CancelCauseFunc

	body  io.ReadCloser
	n     int64
	limit int64
	done  atomic.Bool
}

func (st *reqState) gotConn(info httptrace.GotConnInfo) {
	if st.poolTimer != nil {
		st.poolTimer.Stop()
	}
	if c := asConn(info.Conn); c != nil && st.conn == nil {
		c.inUse.Add(1)
		st.conn = c
	}
	if info.Reused {
		st.host.reused.Add(1)
	}
	st.host.requests.Add(1)
}

func (st *reqState) Read(p []byte) (int, error) {
	if rem := st.limit - st.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // read one byte past the limit to detect overflow
	}
	n, err := st.body.Read(p)
	st.n += int64(n)
	if st.n > st.limit {
		st.body.Close() // unread bytes remain: net/http closes the connection
		st.finish()
		return n - int(st.n-st.limit), fmt.Errorf("%w (%d bytes)", ErrResponseTooLarge, st.limit)
	}
	if err == io.EOF {
		st.finish()
	}
	return n, err
}

func (st *reqState) Close() error {
	err := st.body.Close()
	st.finish()
	return err
}

// finish releases everything the request held; it runs once.
func (st *reqState) finish() {
	if !st.done.CompareAndSwap(false, true) {
		return
	}
	if st.poolTimer != nil {
		st.poolTimer.Stop()
		st.cancelPool(nil)
	}
	st.cancel()
	if c := st.conn; c != nil {
		if c.inUse.Add(-1) == 0 {
			c.idleSince.Store(time.Now().UnixNano())
		}
	}
	st.host.inflight.Add(-1)
	st.c.end()
}

// hostKey is the dialed address for req, as net/http passes it to the dialer.
func hostKey(req *http.Request) string {
	u := req.URL
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// cloneHeaderWith copies h (sharing value slices, which net/http only reads)
// and sets key to v.
func cloneHeaderWith(h http.Header, key string, v []string) http.Header {
	h2 := make(http.Header, len(h)+1)
	for k, vv := range h {
		h2[k] = vv
	}
	h2[key] = v
	return h2
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
