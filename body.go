package warmpool

import (
	"fmt"
	"io"
)

// respBody is the response body handed to the caller: it caps the body at
// max_response_bytes and ends its attempt when the body is read to the end
// or closed.
type respBody struct {
	rc    io.ReadCloser
	n     int64
	limit int64
	a     *attempt
}

func (b *respBody) Read(p []byte) (int, error) {
	if rem := b.limit - b.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // read one byte past the limit to detect overflow
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.rc.Close() // unread bytes remain: net/http closes the connection
		b.a.finish()
		return n - int(b.n-b.limit), fmt.Errorf("%w (%d bytes)", ErrResponseTooLarge, b.limit)
	}
	switch {
	case err == io.EOF:
		b.a.finish()
	case err != nil:
		err = b.a.c.closedErr(err)
	}
	return n, err
}

func (b *respBody) Close() error {
	err := b.rc.Close()
	b.a.finish()
	return err
}
