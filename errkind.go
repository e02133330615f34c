package warmpool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrorKind names what went wrong in a failed call, coarsely and stably, for
// metrics labels, logs, reports and retry decisions. It is the one
// classifier of the module: the retry policy, the pool doctor, the bench
// and the CLI all read it. It returns "" for a nil error.
//
// The kinds, checked in this order:
//
//	closed          the client was closed (ErrClosed)
//	status          a non-2xx answer (*StatusError)
//	content_type    a 2xx answer that is not JSON (*ContentTypeError)
//	pool_timeout    no connection became free within pool_timeout (ErrPoolTimeout)
//	overloaded      not sent: the endpoint is past its capacity (ErrOverloaded)
//	circuit_open    not sent: the endpoint's circuit breaker is open (ErrCircuitOpen)
//	too_large       the body exceeded max_response_bytes (ErrResponseTooLarge)
//	insecure_token  a token would have gone over plain http (ErrInsecureToken)
//	token           the token source failed (*TokenError)
//	idle_race       the server closed a reused idle connection as the request went out (*IdleCloseError)
//	certificate     the server's certificate was rejected
//	tls             the TLS handshake failed otherwise
//	dns             the host name did not resolve
//	refused         the connection was refused
//	canceled        the caller's context was cancelled
//	timeout         a deadline: request_timeout, connection_timeout or the caller's
//	reset           the connection broke: reset, closed or cut short mid-exchange
//	other           anything else
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var (
		se  *StatusError
		cte *ContentTypeError
		te  *TokenError
		ice *IdleCloseError
		dns *net.DNSError
		ne  net.Error
	)
	switch {
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.As(err, &se):
		return "status"
	case errors.As(err, &cte):
		return "content_type"
	case errors.Is(err, ErrPoolTimeout):
		return "pool_timeout"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	case errors.Is(err, ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, ErrResponseTooLarge):
		return "too_large"
	case errors.Is(err, ErrInsecureToken):
		return "insecure_token"
	case errors.As(err, &te):
		return "token"
	case errors.As(err, &ice):
		return "idle_race"
	case isCertError(err):
		return "certificate"
	case isTLSError(err):
		return "tls"
	case errors.As(err, &dns):
		return "dns"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EADDRNOTAVAIL), isStdError(err, stdServerClosedIdle):
		return "reset"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "reset"
	}
	return "other"
}

// errorKinds are the kinds ErrorKind returns, in its order of checks.
var errorKinds = [...]string{"closed", "status", "content_type", "pool_timeout", "overloaded", "circuit_open", "too_large", "insecure_token", "token",
	"idle_race", "certificate", "tls", "dns", "refused", "canceled", "timeout", "reset", "other"}

const numErrorKinds = len(errorKinds)

// ErrorKinds lists every kind ErrorKind returns, in its order of checks.
func ErrorKinds() []string { return append([]string(nil), errorKinds[:]...) }

// errorKindIndex is the position of kind in errorKinds; "other" if unknown.
func errorKindIndex(kind string) int {
	for i, k := range errorKinds {
		if k == kind {
			return i
		}
	}
	return numErrorKinds - 1
}

func isCertError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// isTLSError reports a TLS handshake failure that is not a certificate
// rejection: an alert from the server, a record that is not TLS, or
// net/http's handshake timeout.
func isTLSError(err error) bool {
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	var hs *tlsHandshakeError
	return errors.As(err, &rh) || errors.As(err, &ae) || errors.As(err, &hs) || isTLSHandshakeTimeout(err)
}
