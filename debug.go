package warmpool

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/warmpool/warmpool/internal/diaghook"
)

// DebugHandler returns the pool page of clients, a live view of their pools
// for people, in the manner of net/http/pprof. Mount it on a path ending in
// a slash:
//
//	mux.Handle("/debug/warmpool/", warmpool.DebugHandler(client))
//
// It serves the page at that path and its figures as JSON at stats.json
// below it ("/debug/warmpool/stats.json"), under any prefix. The page shows,
// per client and per host or endpoint, the connections now (active, idle,
// dialing) and charts of the last five minutes (open connections,
// requests/s, reuse rate, dials and closes/s, failed attempts by ErrorKind,
// p50 and p99 latency), learned idle timeouts, endpoint states and
// ejections, the settings in effect (Config.Settings) and the pool doctor's
// findings when package doctor is linked into the program. It updates
// itself every two seconds from stats.json; without JavaScript it is a
// snapshot. It loads nothing from elsewhere (no CDN, no fonts).
//
// It is meant for an internal or admin port: it shows host names, ports and
// settings, never a token or a header value (Config.Settings redacts them),
// and escapes everything it shows. The history is kept by each client from
// its creation (one sample every five seconds, by the goroutine the client
// already has), so the handler starts no goroutine and costs nothing until
// it is asked.
func DebugHandler(clients ...*Client) http.Handler {
	return &debugHandler{clients: slices.Clone(clients)}
}

// debugHandler serves the pool page and its stats.json.
type debugHandler struct {
	clients []*Client
}

func (h *debugHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	p := r.URL.Path
	switch {
	case p == "stats.json" || strings.HasSuffix(p, "/stats.json"):
		hdr.Set("Content-Type", "application/json")
		snap := h.snapshot()
		if err := json.NewEncoder(w).Encode(&snap); err != nil {
			return // the client went away
		}
	case p == "" || strings.HasSuffix(p, "/"):
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", debugPageCSP)
		hdr.Set("X-Frame-Options", "DENY")
		snap := h.snapshot()
		_ = renderDebugPage(w, &snap) // an error here is the client gone
	default:
		http.NotFound(w, r)
	}
}

// debugSnapshot is what stats.json answers and the page shows.
type debugSnapshot struct {
	Version string    `json:"warmpool_version"`
	Time    time.Time `json:"time"`
	PID     int       `json:"pid"`
	// Layout changes when the page's structure must: a host appeared or
	// went. The page reloads itself then.
	Layout  string            `json:"layout"`
	Clients []debugClientView `json:"clients"`
}

// debugClientView is one client on the page.
type debugClientView struct {
	Name     string            `json:"name"` // "client 1", in the order given to DebugHandler
	Stats    Stats             `json:"stats"`
	Settings map[string]string `json:"settings"` // Config.Settings: header values redacted, no auth block
	Doctor   debugDoctor       `json:"doctor"`
	History  debugHistoryView  `json:"history"`
}

// debugDoctor is the doctor's verdict on a client.
type debugDoctor struct {
	// Linked is false when package doctor is not in the program: then
	// there are no findings to show, which is not the same as none.
	Linked   bool               `json:"linked"`
	Findings []diaghook.Finding `json:"findings"`
}

func (h *debugHandler) snapshot() debugSnapshot {
	snap := debugSnapshot{
		Version: Version,
		Time:    time.Now().Round(time.Millisecond),
		PID:     os.Getpid(),
		Clients: make([]debugClientView, 0, len(h.clients)),
	}
	layout := fnv.New64a()
	for i, c := range h.clients {
		if c == nil {
			continue
		}
		cv := debugClientView{Name: fmt.Sprintf("client %d", i+1), Stats: c.Stats()}
		cfg := c.Config()
		cv.Settings = cfg.Settings()
		findings, linked := diaghook.Diagnose(cv.Stats, doctorConfig(cfg))
		cv.Doctor = debugDoctor{Linked: linked, Findings: append([]diaghook.Finding{}, findings...)}
		cv.History = c.history.view(c.now(), &cv.Stats)
		fmt.Fprintf(layout, "%d\x00", i)
		for _, host := range slices.Sorted(maps.Keys(cv.History.Hosts)) {
			fmt.Fprintf(layout, "%s\x00", host)
		}
		snap.Clients = append(snap.Clients, cv)
	}
	snap.Layout = fmt.Sprintf("%016x", layout.Sum64())
	return snap
}

// doctorConfig is cfg as the doctor may see it: without the values of
// headers and the auth block's token, so no finding can quote them.
func doctorConfig(cfg Config) Config {
	for k := range cfg.Headers {
		cfg.Headers[k] = redactedMark
	}
	if cfg.Auth.Token != "" {
		cfg.Auth.Token = redactedMark
	}
	return cfg
}
