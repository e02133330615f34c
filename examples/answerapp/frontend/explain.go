package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/warmpool/warmpool"
)

// problem is a failed question as the page tells it.
type problem struct {
	Status int    // the frontend's answer status
	Kind   string // warmpool.ErrorKind of the call, "" for the frontend's own checks
	What   string // what happened
	Do     string // what to do about it
	Detail string // the error's text: the library's errors never hold a token
}

// explain tells what a failed call to the backend means, by its
// warmpool.ErrorKind, with the setting or the step that fixes it.
func (s *Server) explain(err error) *problem {
	kind := warmpool.ErrorKind(err)
	p := &problem{Status: http.StatusBadGateway, Kind: kind, Detail: err.Error()}
	cfg := s.client.Config()
	switch kind {
	case "status":
		se, _ := errors.AsType[*warmpool.StatusError](err)
		s.explainStatus(p, se)
	case "refused":
		p.What = "The backend is down: nothing accepts connections at " + s.cfg.BackendURL + "."
		p.Do = "Start it (go run ./examples/answerapp starts all three services), or point the frontend at it with -backend."
	case "timeout":
		p.Status = http.StatusGatewayTimeout
		p.What = fmt.Sprintf("The backend did not answer within request_timeout (%s).", cfg.RequestTimeout)
		p.Do = "It may be overloaded or stuck: try again, read its log, or raise request_timeout in config.yaml."
	case "pool_timeout":
		p.Status = http.StatusServiceUnavailable
		p.What = fmt.Sprintf("All %d connections to the backend (max_connections) stayed busy for pool_timeout (%s).", cfg.MaxConnections, cfg.PoolTimeout)
		p.Do = "The frontend is overloaded: try again in a moment, or raise max_connections in config.yaml."
	case "token":
		p.Status = http.StatusInternalServerError
		p.What = "The frontend could not get an ID token for the backend, so it sent nothing."
		p.Do = "Check the token source (its issuer and key); the page never shows a token."
	case "idle_race", "reset":
		p.What = "The connection to the backend broke during the call."
		p.Do = "Try again; if it repeats, keep keepalive_expiry in config.yaml below the backend's idle timeout."
	case "dns", "tls", "certificate":
		p.What = "The frontend could not connect to the backend at " + s.cfg.BackendURL + "."
		p.Do = "Check the backend's address (-backend) and, over TLS, its certificate."
	case "closed":
		p.Status = http.StatusServiceUnavailable
		p.What = "The frontend is shutting down."
		p.Do = "Try again once it is back."
	default:
		p.What = "The call to the backend failed."
		p.Do = "See the detail below and the frontend's log."
	}
	return p
}

// backendError is the body of the backend's error answers.
type backendError struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
	Limit int    `json:"limit"`
}

// explainStatus explains an answer of the backend that was not 2xx.
func (s *Server) explainStatus(p *problem, se *warmpool.StatusError) {
	if se == nil {
		p.What, p.Do = "The backend refused the question.", "See its log."
		return
	}
	var be backendError
	_ = json.Unmarshal(se.Body, &be) // the library redacted any token in it
	switch se.StatusCode {
	case http.StatusRequestEntityTooLarge:
		p.Status = http.StatusRequestEntityTooLarge
		p.What = "Your question is too long for the backend: " + be.Error + "."
		p.Do = fmt.Sprintf("Shorten it to %d characters or fewer.", be.Limit)
	case http.StatusUnprocessableEntity, http.StatusBadRequest:
		p.Status = http.StatusBadRequest
		p.What = "The backend refused the question: " + be.Error + "."
		p.Do = "Type a question, then press Ask."
	case http.StatusUnauthorized:
		p.What = "The backend refused the frontend's ID token: " + be.Error + "."
		p.Do = "Check that the frontend and the backend share the token key and the audience."
	case http.StatusBadGateway:
		p.What = fmt.Sprintf("The backend could not reach the external API (error kind %s there).", be.Kind)
		p.Do = "Check that the external API is up; the backend's log has the error."
	default:
		p.What = fmt.Sprintf("The backend answered %d %s.", se.StatusCode, http.StatusText(se.StatusCode))
		p.Do = "See the backend's log."
	}
}
