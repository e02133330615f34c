package warmpool

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/warmpool/warmpool/internal/refserver"
)

// Through an HTTP proxy net/http dials the proxy's address, where no request
// is counted: the dial gate must stay out of the way.
func TestThroughForwardProxy(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	c := newClient(t, srv, DefaultConfig())
	pu, _ := url.Parse(proxy.URL)
	c.tr.Proxy = http.ProxyURL(pu)
	if ok, _, _, err := countErrs(load(t, 8, 8, func(int) error { return post(c, srv.URL()+"/answer") }), nil); ok != 8 {
		t.Fatalf("%d of 8 succeeded through the proxy, first error: %v", ok, err)
	}
	if n := proxied.Load(); n != 8 {
		t.Errorf("proxy forwarded %d requests, want 8", n)
	}
	if _, ok := c.Stats().Hosts[pu.Host]; !ok {
		t.Errorf("no connections counted to the proxy %s: %v", pu.Host, c.Stats().HostNames())
	}
}
