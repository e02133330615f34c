package warmpool

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warmpool/warmpool/internal/diaghook"
	"github.com/warmpool/warmpool/internal/refserver"
)

// Secrets the pool page must never show.
const (
	debugToken  = "tok-SECRET-debug-page-0123456789"
	debugHeader = "hdr-SECRET-value-9876543210"
)

// serveDebug mounts h on a loopback server under pattern and returns the
// server's URL.
func serveDebug(t testing.TB, pattern string, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// fetch GETs u and returns the body and headers; anything but 200 fails t.
func fetch(t testing.TB, u string) (string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", u, resp.StatusCode, b)
	}
	return string(b), resp.Header
}

// cellText is the text of the data-k cell key of the first element of
// page with that key (the client's totals come first).
func cellText(t testing.TB, page, key string) string {
	t.Helper()
	m := regexp.MustCompile(`data-k="` + regexp.QuoteMeta(key) + `" data-f="[a-z]+">([^<]*)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no cell %q", key)
	}
	return m[1]
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// checkNoSecrets fails t if text shows the token or the header value.
func checkNoSecrets(t testing.TB, what, text string) {
	t.Helper()
	for _, secret := range []string{debugToken, debugHeader} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the secret %q", what, secret)
		}
	}
}

func TestDebugHandlerAgreesWithStatsAndServer(t *testing.T) {
	srv := startServer(t, refserver.Options{Token: debugToken})
	c := newClient(t, srv, Config{Headers: map[string]string{"X-Api-Key": debugHeader}},
		WithTokenSource(StaticToken(debugToken)), WithLogger(discardLogger()))
	const calls = 24
	for i := range calls {
		if err := c.PostJSON(context.Background(), srv.URL()+"/answer?n="+strconv.Itoa(i), question, nil); err != nil {
			t.Fatalf("PostJSON: %v", err)
		}
	}
	base := serveDebug(t, "/debug/warmpool/", DebugHandler(c))
	page, hdr := fetch(t, base+"/debug/warmpool/")
	body, jhdr := fetch(t, base+"/debug/warmpool/stats.json")
	st, server := c.Stats(), srv.Stats()

	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("page Content-Type %q", ct)
	}
	if ct := jhdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("stats.json Content-Type %q", ct)
	}
	var snap debugSnapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	if len(snap.Clients) != 1 {
		t.Fatalf("stats.json has %d clients, want 1", len(snap.Clients))
	}
	js := snap.Clients[0]
	if st.Requests != calls || server.Requests != calls {
		t.Fatalf("requests: Stats %d, server %d, want %d", st.Requests, server.Requests, calls)
	}
	if st.Created != server.Accepted {
		t.Errorf("connections: Stats created %d, server accepted %d", st.Created, server.Accepted)
	}
	for _, f := range []struct {
		key       string
		json, now int64
	}{
		{"requests", js.Stats.Requests, st.Requests},
		{"created", js.Stats.Created, st.Created},
		{"open", js.Stats.Open, st.Open},
		{"idle", js.Stats.Idle, st.Idle},
		{"calls", js.Stats.Calls, st.Calls},
		{"token_fetches", js.Stats.TokenFetches, st.TokenFetches},
	} {
		if f.json != f.now {
			t.Errorf("stats.json %s = %d, Stats() %d", f.key, f.json, f.now)
		}
		if got := cellText(t, page, f.key); got != strconv.FormatInt(f.now, 10) {
			t.Errorf("page %s = %q, Stats() %d", f.key, got, f.now)
		}
	}
	if got, want := cellText(t, page, "reuse"), strconv.FormatFloat(100*st.ReuseRate(), 'f', 1, 64)+"%"; got != want {
		t.Errorf("page reuse = %q, want %q", got, want)
	}
	var charted int64
	for _, n := range js.History.Total.Requests {
		charted += n
	}
	if charted != st.Requests {
		t.Errorf("the history's requests add up to %d, Stats() has %d", charted, st.Requests)
	}
	if js.Settings["max_connections"] != "100" {
		t.Errorf("settings: max_connections %q, want 100", js.Settings["max_connections"])
	}
	checkNoSecrets(t, "the page", page)
	checkNoSecrets(t, "stats.json", body)
	checkPageSelfContained(t, page, hdr)
}

// checkPageSelfContained fails t if the page links anywhere but relative
// URLs, weighs 100 KB or more, or runs a script its CSP does not allow.
func checkPageSelfContained(t testing.TB, page string, hdr http.Header) {
	t.Helper()
	for _, scheme := range []string{"http://", "https://", "//cdn", "src=\""} {
		if strings.Contains(page, scheme) {
			t.Errorf("the page refers to %q: it must load nothing from elsewhere", scheme)
		}
	}
	if len(page) >= 100<<10 {
		t.Errorf("the page weighs %d bytes, want under 100 KB", len(page))
	}
	m := regexp.MustCompile(`(?s)<script>(.*)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no script")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src "+h) {
		t.Errorf("the CSP %q does not allow the page's script (%s)", hdr.Get("Content-Security-Policy"), h)
	}
}

func TestDebugHandlerPrefixes(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, Config{}, WithLogger(discardLogger()))
	if err := c.PostJSON(context.Background(), srv.URL()+"/answer", question, nil); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/warmpool/", DebugHandler(c))
	mux.Handle("/admin/pool/", DebugHandler(c))
	mux.Handle("/stripped/", http.StripPrefix("/stripped", DebugHandler(c)))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	for _, prefix := range []string{"/debug/warmpool/", "/admin/pool/", "/stripped/"} {
		t.Run(strings.Trim(prefix, "/"), func(t *testing.T) {
			page, _ := fetch(t, ts.URL+prefix)
			if !strings.Contains(page, `href="stats.json"`) || !strings.Contains(page, "client 1") {
				t.Errorf("%s: not the pool page", prefix)
			}
			body, _ := fetch(t, ts.URL+prefix+"stats.json")
			var snap debugSnapshot
			if err := json.Unmarshal([]byte(body), &snap); err != nil || len(snap.Clients) != 1 || snap.Clients[0].Stats.Requests != 1 {
				t.Errorf("%s stats.json: %v, %+v", prefix, err, snap.Clients)
			}
			resp, err := http.Get(ts.URL + prefix + "nothing")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%snothing: status %d, want 404", prefix, resp.StatusCode)
			}
			resp, err = http.Post(ts.URL+prefix+"stats.json", "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST: status %d, want 405", resp.StatusCode)
			}
		})
	}
}

// TestDebugHandlerEscapes puts markup where the page shows text that others
// chose: a host name (through a resolver), a request path, the doctor's
// findings. None of it may reach the page as markup.
func TestDebugHandlerEscapes(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	u, _ := url.Parse(srv.URL())
	const evil = `<img src=x onerror=alert(1)>`
	c := newClient(t, srv, Config{}, WithLogger(discardLogger()),
		WithResolver(StaticResolver(map[string][]string{evil: {"127.0.0.1"}})))
	req := &http.Request{Method: http.MethodGet, Header: http.Header{},
		URL: &url.URL{Scheme: "http", Host: evil + ":" + u.Port(), Path: "/<script>alert(2)</script>"}}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	base := serveDebug(t, "/debug/warmpool/", DebugHandler(c))

	t.Run("doctor not linked", func(t *testing.T) {
		page, _ := fetch(t, base+"/debug/warmpool/")
		if !strings.Contains(page, "import <code>github.com/warmpool/warmpool/doctor</code>") {
			t.Error("the page does not say how to link the doctor")
		}
		checkEscaped(t, page)
	})
	t.Run("doctor linked", func(t *testing.T) {
		diaghook.Register(func(stats, cfg any) []diaghook.Finding {
			st, ok := stats.(Stats)
			if !ok {
				t.Errorf("the doctor got %T, want Stats", stats)
			}
			if _, ok := cfg.(Config); !ok {
				t.Errorf("the doctor got %T, want Config", cfg)
			}
			return []diaghook.Finding{{Rule: "test-rule", Severity: "warning", Host: "<script>alert(4)</script>",
				Message: "saw <script>alert(5)</script> in " + strconv.FormatInt(st.Requests, 10) + " requests",
				Fix:     "set <b>nothing</b>"}}
		})
		page, _ := fetch(t, base+"/debug/warmpool/")
		checkEscaped(t, page)
		if !strings.Contains(page, "saw &lt;script&gt;alert(5)&lt;/script&gt; in 1 requests") ||
			!strings.Contains(page, "fix: set &lt;b&gt;nothing&lt;/b&gt;") {
			t.Error("the page does not show the finding and its fix")
		}
		body, _ := fetch(t, base+"/debug/warmpool/stats.json")
		var snap debugSnapshot
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			t.Fatal(err)
		}
		if d := snap.Clients[0].Doctor; !d.Linked || len(d.Findings) != 1 || d.Findings[0].Rule != "test-rule" {
			t.Errorf("stats.json doctor: %+v", d)
		}
		if strings.Contains(body, "<") {
			t.Error("stats.json holds a raw <")
		}
	})
}

// checkEscaped fails t if page holds markup from the test's hostile text.
func checkEscaped(t testing.TB, page string) {
	t.Helper()
	for _, raw := range []string{"<img", "<script>alert", "onerror=alert(1)>", "<b>nothing"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page holds %q unescaped", raw)
		}
	}
	if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("the page does not show the hostile host name, escaped")
	}
}

func TestDebugHandlerWithoutClients(t *testing.T) {
	base := serveDebug(t, "/debug/warmpool/", DebugHandler())
	page, _ := fetch(t, base+"/debug/warmpool/")
	if !strings.Contains(page, "No warmpool client is shown here") {
		t.Error("the page without clients does not say so")
	}
	body, _ := fetch(t, base+"/debug/warmpool/stats.json")
	if !strings.Contains(body, `"clients":[]`) {
		t.Errorf("stats.json without clients: %s", body)
	}
}
