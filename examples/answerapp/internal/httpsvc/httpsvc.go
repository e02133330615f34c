// Package httpsvc runs one service of the example system: an http.Server on
// a loopback port that counts the connections it accepted (the server's
// side of a pool's figures) and shuts down gracefully.
package httpsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a running service.
type Server struct {
	name     string
	ln       net.Listener
	srv      *http.Server
	accepted atomic.Int64
	done     chan error

	shutOnce sync.Once
	shutErr  error
}

// Start listens on addr ("127.0.0.1:0" for a free port) and serves h until
// Shutdown. Idle keep-alive connections are kept two minutes, longer than
// the example's clients keep theirs, so a client never sends a request on a
// connection the server is closing.
func Start(name, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &Server{name: name, ln: ln, done: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.accepted.Add(1)
			}
		},
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the service's base URL, "http://127.0.0.1:PORT".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Accepted counts the connections the service accepted.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Shutdown stops accepting, lets requests in flight finish (until ctx
// ends; then it closes the rest) and returns once the server has stopped.
// Later calls return the first one's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(fmt.Errorf("%s: graceful shutdown: %w", s.name, err), s.srv.Close())
		}
		if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.shutErr = err
	})
	return s.shutErr
}
