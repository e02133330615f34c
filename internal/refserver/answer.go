package refserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warmpool/warmpool/internal/wait"
)

const (
	maxRequestBody   = 1 << 20  // bytes of /answer request body
	maxResponseBytes = 64 << 20 // largest size= or ResponseBytes
)

// knobs are the per-request query parameters of /answer.
type knobs struct {
	status     int           // status=: injected status, 0 = none
	delay      time.Duration // delay=: extra service time
	size       int           // size=: response body size
	html       bool          // ctype=html: reply text/html
	retryAfter string        // retry_after=: Retry-After seconds, "" = none
	close      bool          // close=1: Connection: close
}

func validStatus(code int) bool { return code >= 200 && code <= 599 }

// parseKnobs reads the query parameters; unknown parameters are ignored.
func parseKnobs(q url.Values, defaultSize int) (knobs, error) {
	k := knobs{size: defaultSize}
	if v := q.Get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || !validStatus(n) {
			return k, fmt.Errorf("invalid status %q: want 200..599", v)
		}
		k.status = n
	}
	if v := q.Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return k, fmt.Errorf("invalid delay %q: want a non-negative Go duration such as 50ms", v)
		}
		k.delay = d
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxResponseBytes {
			return k, fmt.Errorf("invalid size %q: want 0..%d", v, maxResponseBytes)
		}
		k.size = n
	}
	switch v := q.Get("ctype"); v {
	case "", "json":
	case "html":
		k.html = true
	default:
		return k, fmt.Errorf("invalid ctype %q: want json or html", v)
	}
	if v := q.Get("retry_after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return k, fmt.Errorf("invalid retry_after %q: want seconds >= 0", v)
		}
		k.retryAfter = strconv.Itoa(n)
	}
	if v := q.Get("close"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return k, fmt.Errorf("invalid close %q: want 1 or 0", v)
		}
		k.close = b
	}
	return k, nil
}

// errorBody is the JSON body of every non-answer reply from /answer.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Status: status})
}

// handleAnswer serves POST /answer; see the package doc for the order of checks.
func (s *Server) handleAnswer(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.c.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="refserver"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
		return
	}
	k, err := parseKnobs(r.URL.Query(), s.opts.ResponseBytes)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if k.retryAfter != "" {
		w.Header().Set("Retry-After", k.retryAfter)
	}
	if k.close {
		w.Header().Set("Connection", "close")
		w.Header().Del("Keep-Alive")
	}
	ctx := r.Context()
	delay := time.Duration(s.delay.Load()) + k.delay

	status := k.status
	if status == 0 {
		status = int(s.status.Load())
	}
	if status != 0 || k.html {
		if sleep(ctx, delay) != nil {
			abort()
		}
		writeFault(w, status, k.html)
		return
	}

	question, code, err := readQuestion(w, r)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}

	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		resp, ok := s.execute(ctx, delay, question, k.size)
		if !ok {
			abort()
		}
		writeBody(w, resp.status, resp.ctype, resp.body)
		return
	}
	e, owner, err := s.idem.claim(ctx, key)
	if err != nil {
		abort() // cancelled while a duplicate was executing
	}
	if !owner {
		s.c.deduplicated.Add(1)
		w.Header().Set("Idempotent-Replayed", "true")
		writeBody(w, e.resp.status, e.resp.ctype, e.resp.body)
		return
	}
	resp, ok := s.execute(ctx, delay, question, k.size)
	if !ok {
		s.idem.abandon(key, e)
		abort()
	}
	s.idem.store(key, e, resp)
	writeBody(w, resp.status, resp.ctype, resp.body)
}

// authorized reports whether r carries the configured bearer token. The auth
// scheme is case-insensitive (RFC 9110); the token is compared in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Token)) == 1
}

// readQuestion reads the JSON object body and returns its "question" member
// (nil if absent), or an HTTP status and error to reply with.
func readQuestion(w http.ResponseWriter, r *http.Request) (json.RawMessage, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxRequestBody)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, http.StatusBadRequest, errors.New("request body must be a JSON object")
	}
	return obj["question"], 0, nil
}

// execute is the backend's work: wait the service delay, then build the
// answer. It reports false, and counts nothing, if ctx ends during the delay.
func (s *Server) execute(ctx context.Context, delay time.Duration, question json.RawMessage, size int) (storedResponse, bool) {
	if sleep(ctx, delay) != nil {
		return storedResponse{}, false
	}
	if up := s.opts.Upstream; up != nil {
		if err := up(ctx, question); err != nil {
			if ctx.Err() != nil {
				return storedResponse{}, false
			}
			body, _ := json.Marshal(map[string]any{"error": "upstream: " + err.Error(), "status": http.StatusBadGateway})
			return storedResponse{status: http.StatusBadGateway, ctype: "application/json", body: append(body, '\n')}, true
		}
	}
	n := s.c.executions.Add(1)
	return storedResponse{status: http.StatusOK, ctype: "application/json", body: answerBody(n, question, size)}, true
}

// padding is a run of 'x' sliced to pad answers without allocating per request.
var padding = bytes.Repeat([]byte{'x'}, 4096)

// answerBody builds {"answer":"42","execution":n,"question":<q>,"padding":"x…"},
// exactly size bytes long unless the body without padding is already longer.
// question is omitted when nil. The execution number makes every executed
// answer distinct, so a test can tell a replay from a second execution.
func answerBody(execution int64, question json.RawMessage, size int) []byte {
	var b bytes.Buffer
	b.Grow(max(size, 64))
	b.WriteString(`{"answer":"42","execution":`)
	b.WriteString(strconv.FormatInt(execution, 10))
	b.WriteByte(',')
	if question != nil {
		b.WriteString(`"question":`)
		if err := json.Compact(&b, question); err != nil {
			b.WriteString("null") // unreachable: question came from json.Unmarshal
		}
		b.WriteByte(',')
	}
	b.WriteString(`"padding":"`)
	for pad := size - b.Len() - len(`"}`); pad > 0; pad -= len(padding) {
		b.Write(padding[:min(pad, len(padding))])
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// writeFault replies with an injected status: a small JSON error, or an HTML
// page as a proxy or login wall would send. status 0 means 200.
func writeFault(w http.ResponseWriter, status int, html bool) {
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.WriteHeader(status) // no body allowed
		return
	}
	text := http.StatusText(status)
	if html {
		page := fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"+
			"<body><h1>%d %s</h1><p>refserver: injected response</p></body></html>\n", status, text, status, text)
		writeBody(w, status, "text/html; charset=utf-8", []byte(page))
		return
	}
	writeError(w, status, "injected: "+strings.ToLower(text))
}

// abort ends a cancelled request without a response, so that the client sees
// an error rather than an empty 200: net/http resets the stream (HTTP/2) or
// closes the connection (HTTP/1), and does not log http.ErrAbortHandler.
func abort() { panic(http.ErrAbortHandler) }

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error { return wait.Sleep(ctx, d, nil) }
