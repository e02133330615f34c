package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/warmpool/warmpool"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "http://127.0.0.1:1/answer", Err: err} }
	tests := []struct {
		name string
		err  error
		want errKind
	}{
		{"status", &statusError{code: 503}, kindStatus},
		{"pool timeout", fmt.Errorf("%w after 5s", warmpool.ErrPoolTimeout), kindTimeout},
		{"context deadline", wrap(context.DeadlineExceeded), kindTimeout},
		{"os deadline", wrap(os.ErrDeadlineExceeded), kindTimeout},
		{"net timeout", wrap(timeoutErr{}), kindTimeout},
		{"refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), kindConn},
		{"reset", wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), kindConn},
		{"no local port", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}), kindConn},
		{"eof", wrap(io.EOF), kindConn},
		{"unexpected eof", wrap(io.ErrUnexpectedEOF), kindConn},
		{"certificate", wrap(&tlsCertErr{}), kindOther},
		{"certificate in a dial error", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}), kindOther},
		{"tls alert", wrap(&net.OpError{Op: "remote error", Err: tls.AlertError(42)}), kindOther},
		{"other", errors.New("something else"), kindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Errorf("classify(%v): got %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// tlsCertErr stands for a certificate the client rejects.
type tlsCertErr = x509.UnknownAuthorityError

func TestErrorCounts(t *testing.T) {
	var by [numKinds]int64
	by[kindTimeout], by[kindConn], by[kindStatus], by[kindOther] = 1, 2, 3, 4
	got := newErrorCounts(by)
	want := ErrorCounts{Total: 10, Timeout: 1, Conn: 2, Status: 3, Other: 4}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
