// Package backend is the answer service of the example system, the brief's
// FastAPI app: POST /answer takes {"question": "..."} with the frontend's
// bearer ID token, asks the external API through one shared warmpool
// client (the brief's backend limits: 10 idle, 50 connections, 60 s
// keep-alive), and answers {"answer": "..."}. Its pool page is at
// /debug/warmpool/.
//
// Errors are JSON, {"error": "...", "kind": "...", "limit": N}:
//
//	401  no ID token, or one that is forged, expired or for another audience
//	400  a body that is not {"question": "..."}
//	422  an empty question
//	413  a question over the limit (MaxQuestion characters)
//	502  the external API call failed; kind is warmpool.ErrorKind
package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/warmpool/warmpool"
	_ "github.com/warmpool/warmpool/doctor" // the pool page shows the doctor's findings
	"github.com/warmpool/warmpool/examples/answerapp/idtoken"
	"github.com/warmpool/warmpool/examples/answerapp/internal/httpsvc"
)

// DefaultMaxQuestion is the longest question the backend takes, in
// characters.
const DefaultMaxQuestion = 1000

// Config configures the backend.
type Config struct {
	Addr        string          // listen address; "" means 127.0.0.1:0
	ExternalURL string          // the external API's base URL
	Client      warmpool.Config // the client to the external API; zero: ClientConfig()
	Issuer      *idtoken.Issuer // checks the frontend's ID tokens
	Audience    string          // the audience those tokens must name
	MaxQuestion int             // characters; 0: DefaultMaxQuestion
	// StatsInterval is how often to log "HTTP client stats"; 0: only the
	// final line, at shutdown.
	StatsInterval time.Duration
	Logger        *slog.Logger // nil: slog.Default()
}

// ClientConfig is the brief's backend client, httpx.Limits(
// max_keepalive_connections=10, max_connections=50, keepalive_expiry=60.0),
// every other setting at warmpool's default.
func ClientConfig() warmpool.Config {
	return warmpool.Config{MaxKeepaliveConnections: 10, MaxConnections: 50, KeepaliveExpiry: 60 * time.Second}
}

// Server is the running backend.
type Server struct {
	*httpsvc.Server
	cfg     Config
	log     *slog.Logger
	client  *warmpool.Client
	stats   *httpsvc.StatsLogger
	answers atomic.Int64
}

// Start starts the backend. Its client opens no connection until the first
// question: the brief's "created on first use".
func Start(cfg Config) (*Server, error) {
	if cfg.Issuer == nil || cfg.ExternalURL == "" {
		return nil, errors.New("backend: Config needs an Issuer and an ExternalURL")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxQuestion <= 0 {
		cfg.MaxQuestion = DefaultMaxQuestion
	}
	if cfg.Client.MaxConnections == 0 && cfg.Client.MaxKeepaliveConnections == 0 && cfg.Client.KeepaliveExpiry == 0 {
		cfg.Client = ClientConfig()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, err := warmpool.New(cfg.Client, warmpool.WithLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, client: client}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /answer", s.answer)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /debug/warmpool/", warmpool.DebugHandler(client))
	if s.Server, err = httpsvc.Start("backend", cfg.Addr, mux, cfg.Logger); err != nil {
		client.Close()
		return nil, err
	}
	s.stats = httpsvc.StartStatsLogger(cfg.Logger, client, cfg.StatsInterval)
	return s, nil
}

// Client is the backend's client to the external API.
func (s *Server) Client() *warmpool.Client { return s.client }

// Answers counts the POST /answer requests received, whatever their fate.
func (s *Server) Answers() int64 { return s.answers.Load() }

// Shutdown stops taking requests, lets those in flight finish (their calls
// to the external API too), then closes the client's connections and logs
// its final stats line.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	err = errors.Join(err, s.client.Shutdown(ctx))
	s.stats.Stop()
	return err
}

// apiError is the body of an error answer.
type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"`  // the warmpool.ErrorKind of a failed external call
	Limit int    `json:"limit,omitempty"` // the question limit, on 413
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	s.answers.Add(1)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="answer"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "no bearer ID token"})
		return
	}
	if err := s.cfg.Issuer.Verify(tok, s.cfg.Audience); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="answer", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "invalid ID token: " + strings.TrimPrefix(err.Error(), "idtoken: ")})
		return
	}
	limit := s.cfg.MaxQuestion
	var in struct {
		Question string `json:"question"`
	}
	// A question of limit characters takes at most 4×limit bytes in UTF-8,
	// 6×limit escaped in JSON.
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(6*limit+256))).Decode(&in); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("question too long: the limit is %d characters", limit), Limit: limit})
			return
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: `want a JSON body {"question": "..."}`})
		return
	}
	q := strings.TrimSpace(in.Question)
	if q == "" {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "empty question"})
		return
	}
	if n := utf8.RuneCountInString(q); n > limit {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("question too long: %d characters; the limit is %d", n, limit), Limit: limit})
		return
	}
	var out struct {
		Text  string `json:"text"`
		Model string `json:"model"`
	}
	if err := s.client.PostJSON(r.Context(), s.cfg.ExternalURL+"/v1/complete", map[string]string{"prompt": q}, &out); err != nil {
		kind := warmpool.ErrorKind(err)
		s.log.Warn("external API call failed", "kind", kind, "err", err)
		writeJSON(w, http.StatusBadGateway, apiError{Error: "the external API call failed (" + kind + ")", Kind: kind})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"answer": out.Text, "model": out.Model})
}
