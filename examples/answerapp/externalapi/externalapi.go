// Package externalapi is the "external API" of the example system: the
// service the brief's backend calls for each answer (a model provider, a
// search API). It answers POST /v1/complete {"prompt": "..."} with
// {"text": "...", "model": "stub-1"} after a small service time, and counts
// the connections and requests it got, so that a test can hold the
// backend's pool figures to the server's own.
package externalapi

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/examples/answerapp/internal/httpsvc"
)

// Config configures the stub.
type Config struct {
	Addr   string        // listen address; "" means 127.0.0.1:0, a free loopback port
	Delay  time.Duration // service time of each answer
	Logger *slog.Logger  // nil: slog.Default()
}

// Server is the running stub.
type Server struct {
	*httpsvc.Server
	delay    time.Duration
	requests atomic.Int64
}

// Request is what POST /v1/complete takes, and Response what it answers.
type (
	Request struct {
		Prompt string `json:"prompt"`
	}
	Response struct {
		Text  string `json:"text"`
		Model string `json:"model"`
	}
)

// Start starts the stub.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{delay: cfg.Delay}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/complete", s.complete)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv, err := httpsvc.Start("external API", cfg.Addr, mux, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s.Server = srv
	return s, nil
}

// Requests counts the POST /v1/complete requests received.
func (s *Server) Requests() int64 { return s.requests.Load() }

var answers = []string{
	"keep one client per process and reuse its connections: a handshake saved is a round trip saved.",
	"a warm connection answers in one round trip; a new one pays TCP and TLS first.",
	"cap the pool, time out the wait, and watch the reuse rate.",
	"close idle connections before the server does, and retry only what is safe to repeat.",
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || strings.TrimSpace(req.Prompt) == "" {
		http.Error(w, `{"error":"want {\"prompt\": \"...\"}"}`, http.StatusBadRequest)
		return
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		}
	}
	h := fnv.New32a()
	h.Write([]byte(req.Prompt))
	text := fmt.Sprintf("You asked %q (%d words). The external API's answer: %s",
		req.Prompt, len(strings.Fields(req.Prompt)), answers[h.Sum32()%uint32(len(answers))])
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Response{Text: text, Model: "stub-1"})
}
