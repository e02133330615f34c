package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/warmpool/warmpool"
)

// errKind is what went wrong with a failed request, coarsely, for the report.
type errKind int

const (
	kindTimeout errKind = iota // a deadline: request, dial, TLS handshake, or warmpool's pool_timeout
	kindConn                   // the connection: refused, reset, closed early, no local port left
	kindStatus                 // a response whose status is not 2xx
	kindOther                  // anything else, such as a TLS handshake that failed or a certificate the client rejects
	numKinds
)

func (k errKind) String() string {
	return [...]string{"timeout", "conn", "status", "other"}[k]
}

// ErrorCounts counts failed requests by kind.
type ErrorCounts struct {
	Total   int64 `json:"total"`
	Timeout int64 `json:"timeout"`
	Conn    int64 `json:"conn"`
	Status  int64 `json:"status"`
	Other   int64 `json:"other"`
}

func newErrorCounts(by [numKinds]int64) ErrorCounts {
	c := ErrorCounts{Timeout: by[kindTimeout], Conn: by[kindConn], Status: by[kindStatus], Other: by[kindOther]}
	c.Total = c.Timeout + c.Conn + c.Status + c.Other
	return c
}

// statusError is a response with a status other than 2xx.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// classify sorts err into a kind, by the standard library's error values and
// interfaces only; nothing here matches on error text.
func classify(err error) errKind {
	var se *statusError
	var ne net.Error
	var oe *net.OpError
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var rhe tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.As(err, &se):
		return kindStatus
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie),
		errors.As(err, &rhe), errors.As(err, &ae):
		// TLS failures come wrapped in a dial *net.OpError: they are not
		// the connection's fault, so this case goes before conn.
		return kindOther
	case errors.Is(err, warmpool.ErrPoolTimeout),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EADDRNOTAVAIL),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.As(err, &oe):
		return kindConn
	}
	return kindOther
}
