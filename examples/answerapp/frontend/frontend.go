// Package frontend is the question page of the example system, the brief's
// Streamlit app: a small HTML form whose questions it POSTs, with a bearer
// ID token, to the backend's /answer through one shared warmpool client
// built from config.yaml. A second form sends a burst of questions, so that
// a person can watch the pool work on its page, /debug/warmpool/.
//
// Bad input and failures get a page that says what happened, the error's
// kind (warmpool.ErrorKind) and what to do (see explain): an empty
// question, one over the backend's limit, the backend down or failing, the
// token source failing. No page shows a token.
package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/warmpool/warmpool"
	_ "github.com/warmpool/warmpool/doctor" // the pool page shows the doctor's findings
	"github.com/warmpool/warmpool/examples/answerapp/internal/httpsvc"
)

// Config configures the frontend.
type Config struct {
	Addr       string               // listen address; "" means 127.0.0.1:0
	BackendURL string               // the backend's base URL, "http://127.0.0.1:PORT"
	Client     warmpool.Config      // the client to the backend: config.yaml's http_client block
	Tokens     warmpool.TokenSource // ID tokens for the backend
	// StatsInterval is how often to log "HTTP client stats"; 0: only the
	// final line, at shutdown.
	StatsInterval time.Duration
	Logger        *slog.Logger // nil: slog.Default()
	// MaxLoad bounds one press of the load button: questions (0: 1000),
	// and concurrency at most 64.
	MaxLoad int
}

const maxConcurrency = 64

// Server is the running frontend.
type Server struct {
	*httpsvc.Server
	cfg    Config
	log    *slog.Logger
	client *warmpool.Client
	stats  *httpsvc.StatsLogger
	load   sync.Mutex // one load run at a time
}

// Start starts the frontend. Its client opens no connection until the
// first question.
func Start(cfg Config) (*Server, error) {
	if cfg.BackendURL == "" || cfg.Tokens == nil {
		return nil, errors.New("frontend: Config needs a BackendURL and Tokens")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxLoad <= 0 {
		cfg.MaxLoad = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.BackendURL = strings.TrimSuffix(cfg.BackendURL, "/")
	client, err := warmpool.New(cfg.Client, warmpool.WithTokenSource(cfg.Tokens), warmpool.WithLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, client: client}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("POST /ask", s.ask)
	mux.HandleFunc("POST /load", s.loadRun)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /debug/warmpool/", warmpool.DebugHandler(client))
	if s.Server, err = httpsvc.Start("frontend", cfg.Addr, mux, cfg.Logger); err != nil {
		client.Close()
		return nil, err
	}
	s.stats = httpsvc.StartStatsLogger(cfg.Logger, client, cfg.StatsInterval)
	return s, nil
}

// Client is the frontend's client to the backend.
func (s *Server) Client() *warmpool.Client { return s.client }

// Shutdown stops taking requests, lets those in flight finish (a load run
// too), then closes the client's connections and logs its final stats
// line.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	err = errors.Join(err, s.client.Shutdown(ctx))
	s.stats.Stop()
	return err
}

// answer is the backend's answer.
type answer struct {
	Answer string `json:"answer"`
	Model  string `json:"model"`
}

// Ask sends question to the backend and returns its answer.
func (s *Server) Ask(ctx context.Context, question string) (string, error) {
	var a answer
	err := s.client.PostJSON(ctx, s.cfg.BackendURL+"/answer", map[string]string{"question": question}, &a)
	return a.Answer, err
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, page{})
}

// maxForm bounds what the forms read; the backend's own limit on questions
// is far lower.
const maxForm = 1 << 20

func (s *Server) ask(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusRequestEntityTooLarge, page{Problem: &problem{
			What: "Your question is far too long for this form (over 1 MiB).", Do: "Shorten it."}})
		return
	}
	q := strings.TrimSpace(r.PostForm.Get("question"))
	p := page{Question: q}
	if q == "" {
		p.Problem = &problem{Status: http.StatusBadRequest, What: "Your question is empty.", Do: "Type a question, then press Ask."}
		s.render(w, p.Problem.Status, p)
		return
	}
	a, err := s.Ask(r.Context(), q)
	if err != nil {
		p.Problem = s.explain(err)
		s.log.Warn("question failed", "kind", p.Problem.Kind, "err", err)
		s.render(w, p.Problem.Status, p)
		return
	}
	p.Answer = a
	s.render(w, http.StatusOK, p)
}
