package warmpool

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
