package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func TestErrorAnswersKeepTheConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, DefaultConfig())
	base := srv.URL() + "/answer"

	tests := []struct {
		name  string
		query string
		check func(t *testing.T, err error)
	}{
		{"500 is a StatusError", "?status=500", func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want *StatusError", err, err)
			}
			if se.StatusCode != 500 || se.Method != "POST" || se.URL != base {
				t.Errorf("got status %d %s %s, want 500 POST %s", se.StatusCode, se.Method, se.URL, base)
			}
			if len(se.Body) == 0 {
				t.Error("StatusError has no body excerpt")
			}
		}},
		{"503 is a StatusError", "?status=503&retry_after=0", func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 503 {
				t.Fatalf("got %v, want *StatusError 503", err)
			}
		}},
		{"200 with HTML is a content-type error", "?ctype=html", func(t *testing.T, err error) {
			var ce *ContentTypeError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v (%T), want *ContentTypeError", err, err)
			}
			if !strings.HasPrefix(ce.ContentType, "text/html") || !strings.Contains(err.Error(), "text/html") {
				t.Errorf("error %q does not name the content type text/html", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, post(c, base+tt.query))
			if err := post(c, base); err != nil {
				t.Fatalf("next request: %v", err)
			}
			if n := srv.Stats().Accepted; n != 1 {
				t.Errorf("server accepted %d connections, want 1: the error path must return the connection to the pool", n)
			}
		})
	}
}

func TestStatusErrorBodyIsCapped(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, big, http.StatusBadGateway)
	}))
	defer srv.Close()
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.PostJSON(context.Background(), srv.URL+"/answer?secret=1", question, nil)
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want *StatusError", err)
	}
	if len(se.Body) != maxErrorBody {
		t.Errorf("body excerpt is %d bytes, want %d", len(se.Body), maxErrorBody)
	}
	if len(err.Error()) > 400 {
		t.Errorf("error message is %d bytes long, want a short one", len(err.Error()))
	}
	if strings.Contains(se.URL, "secret") {
		t.Errorf("StatusError URL %q keeps the query string", se.URL)
	}
}

func TestOversizedBodyClosesConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = 2000
	c := newClient(t, srv, cfg)
	if err := post(c, srv.URL()+"/answer?size=1000"); err != nil {
		t.Fatal(err)
	}
	err := post(c, srv.URL()+"/answer?size=50000")
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("got %v, want ErrResponseTooLarge", err)
	}
	if err := post(c, srv.URL()+"/answer?size=1000"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Accepted; n != 2 {
		t.Errorf("server accepted %d connections, want 2: the oversized answer's connection must be closed, not drained", n)
	}
}

func TestOversizedChunkedBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"answer":"`)
		for range 100 { // no Content-Length: the limit must hold while reading
			fmt.Fprint(w, strings.Repeat("y", 1000))
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, `"}`)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = 10000
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := post(c, srv.URL); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("got %v, want ErrResponseTooLarge", err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := resp.Body.Read(buf)
		total += n
		if err != nil {
			if !errors.Is(err, ErrResponseTooLarge) {
				t.Fatalf("Do body read: got %v, want ErrResponseTooLarge", err)
			}
			break
		}
	}
	if total != 10000 {
		t.Errorf("read %d bytes before the error, want exactly max_response_bytes (10000)", total)
	}
}

func TestRequestTimeout(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 2 * time.Second})
	cfg := DefaultConfig()
	cfg.RequestTimeout = 100 * time.Millisecond
	c := newClient(t, srv, cfg)
	start := time.Now()
	err := post(c, srv.URL()+"/answer")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "request_timeout") {
		t.Fatalf("got %v, want a request_timeout error matching context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timed out after %s, want about 100ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = c.PostJSON(ctx, srv.URL()+"/answer", question, nil)
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "request_timeout") {
		t.Errorf("caller's deadline: got %v, want the caller's context.DeadlineExceeded", err)
	}
}
