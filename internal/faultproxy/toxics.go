package faultproxy

import (
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// cutType is the toxiproxy name of cutToxic. toxiproxy keeps one global
// registry of toxic types; the prefix keeps ours apart.
const cutType = "faultproxy_cut"

func init() { toxics.Register(cutType, new(cutToxic)) }

// toxicType maps this package's toxic names onto toxiproxy's registry.
func toxicType(t string) string {
	if t == "cut" {
		return cutType
	}
	return t
}

// cutToxic passes the first Bytes bytes of each link, then ends the stream,
// like toxiproxy's limit_data. Unlike limit_data it goes on reading (and
// discarding) its input until that ends, so the toxic before it never blocks
// on a send nobody receives.
type cutToxic struct {
	Bytes int64 `json:"bytes"`
}

type cutState struct {
	passed int64
	cut    bool
}

func (t *cutToxic) NewState() any { return new(cutState) }

func (t *cutToxic) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*cutState)
	if st == nil {
		st = new(cutState)
		stub.State = st
	}
	for !st.cut && st.passed < t.Bytes {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if rem := t.Bytes - st.passed; int64(len(c.Data)) > rem {
				c = &stream.StreamChunk{Data: c.Data[:rem], Timestamp: c.Timestamp}
			}
			stub.Output <- c
			st.passed += int64(len(c.Data))
		}
	}
	// Cut: end the stream, then drain the input to its end. Once closed, the
	// stub is never interrupted (toxiproxy checks), so Interrupt is not read:
	// a toxiproxy removal that got through would write to the closed output.
	if !st.cut {
		st.cut = true
		stub.Close()
	}
	for c := range stub.Input {
		_ = c // discard
	}
}
