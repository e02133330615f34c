package refserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	s := newServer(t, Options{Token: "s3cret"})
	c := newClient(t, s, modeH1, true)
	tests := []struct {
		name, auth string
		want       int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", "Bearer s3cre", http.StatusUnauthorized},
		{"wrong scheme", "Basic s3cret", http.StatusUnauthorized},
		{"right", "Bearer s3cret", http.StatusOK},
		{"scheme case-insensitive", "bearer s3cret", http.StatusOK},
	}
	var wantUnauthorized int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			r := post(t, c, s.URL()+"/answer", `{}`, hdr...)
			if r.status != tt.want {
				t.Fatalf("status: got %d, want %d", r.status, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				wantUnauthorized++
				if got := r.header.Get("Content-Type"); got != "application/json" {
					t.Errorf("401 Content-Type: got %q, want application/json", got)
				}
				if !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate: got %q, want Bearer", r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	if st := s.Stats(); st.Unauthorized != wantUnauthorized || st.Executions != 2 {
		t.Errorf("Unauthorized, Executions: got %d, %d, want %d, 2", st.Unauthorized, st.Executions, wantUnauthorized)
	}
}

// answer is the decoded /answer body.
type answer struct {
	Answer    string          `json:"answer"`
	Execution int64           `json:"execution"`
	Question  json.RawMessage `json:"question"`
	Padding   string          `json:"padding"`
}

func TestAnswerBody(t *testing.T) {
	tests := []struct {
		name, query, body string
		respBytes, want   int
		wantQuestion      string
	}{
		{"default size", "", `{}`, 0, DefaultResponseBytes, ""},
		{"echoes question", "", `{"question": "why?", "other": 1}`, 0, DefaultResponseBytes, `"why?"`},
		{"echoes structured question", "", `{"question": {"q": [1, 2]}}`, 0, DefaultResponseBytes, `{"q":[1,2]}`},
		{"ResponseBytes", "", `{}`, 200, 200, ""},
		{"size knob", "?size=5000", `{}`, 0, 5000, ""},
		{"size knob above padding chunk", "?size=10000", `{"question":"q"}`, 0, 10000, `"q"`},
		{"size smaller than envelope", "?size=0", `{}`, 0, len(`{"answer":"42","execution":1,"padding":""}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{ResponseBytes: tt.respBytes})
			r := post(t, newClient(t, s, modeH1, true), s.URL()+"/answer"+tt.query, tt.body)
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s, want 200 application/json", r.status, r.header.Get("Content-Type"))
			}
			if len(r.body) != tt.want {
				t.Errorf("body size: got %d, want %d", len(r.body), tt.want)
			}
			var a answer
			if err := json.Unmarshal([]byte(r.body), &a); err != nil {
				t.Fatalf("decode %q: %v", r.body, err)
			}
			if a.Answer != "42" || a.Execution != 1 || string(a.Question) != tt.wantQuestion {
				t.Errorf("got answer %q execution %d question %s, want 42, 1, %s", a.Answer, a.Execution, a.Question, tt.wantQuestion)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s, modeH1, true)
	tests := []struct {
		name, query, body string
		want              int
	}{
		{"not JSON", "", `question=why`, http.StatusBadRequest},
		{"empty body", "", ``, http.StatusBadRequest},
		{"JSON array", "", `[1,2]`, http.StatusBadRequest},
		{"JSON null", "", `null`, http.StatusBadRequest},
		{"body over 1 MiB", "", `{"q":"` + strings.Repeat("x", maxRequestBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"bad status", "?status=42", `{}`, http.StatusBadRequest},
		{"bad delay", "?delay=soon", `{}`, http.StatusBadRequest},
		{"negative size", "?size=-1", `{}`, http.StatusBadRequest},
		{"bad ctype", "?ctype=xml", `{}`, http.StatusBadRequest},
		{"bad retry_after", "?retry_after=later", `{}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, c, s.URL()+"/answer"+tt.query, tt.body)
			if r.status != tt.want {
				t.Errorf("status: got %d, want %d (%s)", r.status, tt.want, r.body)
			}
		})
	}
	if r := get(t, c, s.URL()+"/answer"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /answer: got %d, want 405", r.status)
	}
	if got := s.Stats().Executions; got != 0 {
		t.Errorf("Executions: got %d, want 0", got)
	}
}

func TestFaultKnobs(t *testing.T) {
	tests := []struct {
		name, query    string
		status         int
		ctype          string
		bodyHas        string
		wantRetryAfter string
	}{
		{"status", "?status=503", 503, "application/json", `"status":503`, ""},
		{"status with retry_after", "?status=429&retry_after=2", 429, "application/json", `"status":429`, "2"},
		{"html", "?ctype=html", 200, "text/html; charset=utf-8", "<html>", ""},
		{"html error page", "?ctype=html&status=502", 502, "text/html; charset=utf-8", "502 Bad Gateway", ""},
		{"no content", "?status=204", 204, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			r := post(t, newClient(t, s, modeH1, true), s.URL()+"/answer"+tt.query, `{}`)
			if r.status != tt.status || r.header.Get("Content-Type") != tt.ctype {
				t.Errorf("got %d %q, want %d %q", r.status, r.header.Get("Content-Type"), tt.status, tt.ctype)
			}
			if !strings.Contains(r.body, tt.bodyHas) {
				t.Errorf("body: got %q, want it to contain %q", r.body, tt.bodyHas)
			}
			if got := r.header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.wantRetryAfter)
			}
			if got := s.Stats().Executions; got != 0 {
				t.Errorf("Executions after a fault: got %d, want 0", got)
			}
		})
	}
}

func TestCloseKnob(t *testing.T) {
	for _, tt := range []struct{ proto, client string }{{"http", modeH1}, {"tls", modeH2}} {
		t.Run(tt.proto, func(t *testing.T) {
			s := newServer(t, Options{Proto: tt.proto})
			c := newClient(t, s, tt.client, true)
			post(t, c, s.URL()+"/answer?close=1", `{}`)
			post(t, c, s.URL()+"/answer", `{}`)
			if got := s.Stats().Accepted; got != 2 {
				t.Errorf("Accepted after close=1: got %d, want 2", got)
			}
		})
	}
}

func TestSetStatusAndSetDelay(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s, modeH1, true)
	s.SetStatus(http.StatusServiceUnavailable)
	if r := post(t, c, s.URL()+"/answer", `{}`); r.status != http.StatusServiceUnavailable {
		t.Errorf("after SetStatus(503): got %d, want 503", r.status)
	}
	if r := post(t, c, s.URL()+"/answer?status=500", `{}`); r.status != http.StatusInternalServerError {
		t.Errorf("status knob over SetStatus: got %d, want 500", r.status)
	}
	s.SetStatus(0)
	if r := post(t, c, s.URL()+"/answer", `{}`); r.status != http.StatusOK {
		t.Errorf("after SetStatus(0): got %d, want 200", r.status)
	}

	const d = 30 * time.Millisecond
	s.SetDelay(d)
	start := time.Now()
	post(t, c, s.URL()+"/answer?delay=20ms", `{}`)
	if got := time.Since(start); got < d+20*time.Millisecond {
		t.Errorf("SetDelay(%v) + delay=20ms: took %v, want at least %v", d, got, d+20*time.Millisecond)
	}
}

func TestDelayHonoursCancellation(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s, modeH1, true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := tryPost(ctx, c, s.URL()+"/answer?delay=1m", `{}`); err == nil {
		t.Fatal("got nil error, want the context deadline")
	}
	waitFor(t, "InFlight == 0", func() bool { return s.Stats().InFlight == 0 })
	if got := time.Since(start); got > 5*time.Second {
		t.Errorf("handler freed after %v, want soon after the cancel", got)
	}
	if got := s.Stats().Executions; got != 0 {
		t.Errorf("Executions: got %d, want 0", got)
	}
}

func TestIdempotency(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s, modeH2, true)
	u := s.URL() + "/answer"

	first := post(t, c, u, `{"question":"a"}`, "Idempotency-Key", "k1")
	second := post(t, c, u, `{"question":"a"}`, "Idempotency-Key", "k1")
	other := post(t, c, u, `{"question":"a"}`, "Idempotency-Key", "k2")
	plain := post(t, c, u, `{"question":"a"}`)
	if first.body != second.body || first.status != second.status {
		t.Errorf("replay: got %d %q, want %d %q", second.status, second.body, first.status, first.body)
	}
	if first.header.Get("Idempotent-Replayed") != "" || second.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed: got %q then %q, want \"\" then \"true\"",
			first.header.Get("Idempotent-Replayed"), second.header.Get("Idempotent-Replayed"))
	}
	if other.body == first.body || plain.body == first.body {
		t.Error("a different key or no key replayed the stored body, want a fresh execution")
	}
	if st := s.Stats(); st.Executions != 3 || st.Deduplicated != 1 {
		t.Errorf("Executions, Deduplicated: got %d, %d, want 3, 1", st.Executions, st.Deduplicated)
	}
}

func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s, modeH2, true)
	const dups = 5
	bodies := make([]string, dups+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		bodies[0] = post(t, c, s.URL()+"/answer?delay=200ms", `{}`, "Idempotency-Key", "k").body
	})
	waitFor(t, "the first request in flight", func() bool { return s.Stats().InFlight == 1 })
	for i := 1; i <= dups; i++ {
		wg.Go(func() { bodies[i] = post(t, c, s.URL()+"/answer", `{}`, "Idempotency-Key", "k").body })
	}
	wg.Wait()
	for i, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("duplicate %d: got %q, want %q", i+1, b, bodies[0])
		}
	}
	if st := s.Stats(); st.Executions != 1 || st.Deduplicated != dups {
		t.Errorf("Executions, Deduplicated: got %d, %d, want 1, %d", st.Executions, st.Deduplicated, dups)
	}
}

func TestIdempotencyNotStored(t *testing.T) {
	tests := []struct {
		name  string
		first func(t *testing.T, c *http.Client, u string)
	}{
		{"injected fault", func(t *testing.T, c *http.Client, u string) {
			if r := post(t, c, u+"?status=503", `{}`, "Idempotency-Key", "k"); r.status != 503 {
				t.Fatalf("first status: got %d, want 503", r.status)
			}
		}},
		{"cancelled execution", func(t *testing.T, c *http.Client, u string) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			if _, err := tryPost(ctx, c, u+"?delay=1m", `{}`, "Idempotency-Key", "k"); err == nil {
				t.Fatal("first request: got nil error, want the context deadline")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			c := newClient(t, s, modeH1, true)
			tt.first(t, c, s.URL()+"/answer")
			waitFor(t, "InFlight == 0", func() bool { return s.Stats().InFlight == 0 })
			r := post(t, c, s.URL()+"/answer", `{}`, "Idempotency-Key", "k")
			if r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "" {
				t.Errorf("retry: got %d replayed=%q, want 200 executed", r.status, r.header.Get("Idempotent-Replayed"))
			}
			if st := s.Stats(); st.Executions != 1 || st.Deduplicated != 0 {
				t.Errorf("Executions, Deduplicated: got %d, %d, want 1, 0", st.Executions, st.Deduplicated)
			}
		})
	}
}

func TestIdemStoreEvictsOldest(t *testing.T) {
	st := newIdemStore(2)
	ctx := context.Background()
	for i, key := range []string{"a", "b", "c"} {
		e, owner, err := st.claim(ctx, key)
		if err != nil || !owner {
			t.Fatalf("claim(%q): got owner %v, err %v, want owner", key, owner, err)
		}
		st.store(key, e, storedResponse{status: 200, body: []byte(strconv.Itoa(i))})
	}
	if got := st.len(); got != 2 {
		t.Errorf("len: got %d, want 2", got)
	}
	for _, tt := range []struct {
		key       string
		wantOwner bool
	}{{"a", true}, {"b", false}, {"c", false}} {
		e, owner, _ := st.claim(ctx, tt.key)
		if owner != tt.wantOwner {
			t.Errorf("claim(%q): got owner %v, want %v", tt.key, owner, tt.wantOwner)
		}
		if owner {
			st.abandon(tt.key, e)
		}
	}
}

func FuzzAnswerBody(f *testing.F) {
	f.Add(`"why?"`, 961)
	f.Add(`{"a":[1, 2, "<x>"]}`, 0)
	f.Add(`null`, 5000)
	f.Fuzz(func(t *testing.T, question string, size int) {
		var q json.RawMessage
		if err := json.Unmarshal([]byte(`{"question":`+question+`}`), &map[string]*json.RawMessage{"question": &q}); err != nil {
			t.Skip()
		}
		size = min(max(size, 0), 1<<16)
		b := answerBody(7, q, size)
		var a answer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("answerBody(%s, %d) is not JSON: %v: %s", q, size, err, b)
		}
		if unpadded := len(b) - len(a.Padding); len(b) != max(size, unpadded) {
			t.Errorf("size: got %d, want %d", len(b), max(size, unpadded))
		}
	})
}

func FuzzParseKnobs(f *testing.F) {
	f.Add("status=503&retry_after=2&delay=50ms&size=10&ctype=html&close=1")
	f.Add("status=99999999999999999999&size=-0")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Skip()
		}
		k, err := parseKnobs(q, DefaultResponseBytes)
		if err != nil {
			return
		}
		if k.status != 0 && !validStatus(k.status) || k.delay < 0 || k.size < 0 || k.size > maxResponseBytes {
			t.Errorf("parseKnobs(%q) = %+v, out of range", query, k)
		}
	})
}
