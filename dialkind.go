package warmpool

import "iter"

// dialKind is why a connection attempt failed. This file is the one table of
// dial-failure kinds: the dialer records them, Stats counts them in
// DialFailures, and the Prometheus and OpenTelemetry packages, the doctor and
// the CLI name them through DialFailures.All.
type dialKind int

const (
	dialRefused dialKind = iota
	dialTimeout
	dialDNS
	dialTLS
	dialOther
	dialKinds
)

// dialKindNames are the kinds as metrics and reports name them.
var dialKindNames = [dialKinds]string{
	dialRefused: "refused",
	dialTimeout: "timeout",
	dialDNS:     "dns",
	dialTLS:     "tls",
	dialOther:   "other",
}

func (k dialKind) String() string { return dialKindNames[k] }

// DialFailures counts failed connection attempts by kind.
type DialFailures struct {
	Refused int64 `json:"refused"` // connection refused or reset while connecting
	Timeout int64 `json:"timeout"` // connect or TLS handshake timed out
	DNS     int64 `json:"dns"`     // name resolution failed
	TLS     int64 `json:"tls"`     // TLS handshake failed (including certificate errors)
	Other   int64 `json:"other"`
}

// field returns the counter of k in d.
func (d *DialFailures) field(k dialKind) *int64 {
	switch k {
	case dialRefused:
		return &d.Refused
	case dialTimeout:
		return &d.Timeout
	case dialDNS:
		return &d.DNS
	case dialTLS:
		return &d.TLS
	}
	return &d.Other
}

// All yields each kind by its name ("refused", "timeout", "dns", "tls",
// "other") with its count, in that order, every kind once.
func (d DialFailures) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		for k := range dialKinds {
			if !yield(k.String(), *d.field(k)) {
				return
			}
		}
	}
}

// Total is the sum over all kinds.
func (d DialFailures) Total() int64 {
	var n int64
	for _, v := range d.All() {
		n += v
	}
	return n
}

// DialFailureKinds lists the names All yields, in its order.
func DialFailureKinds() []string { return append([]string(nil), dialKindNames[:]...) }

func (d *DialFailures) add(o DialFailures) {
	for k := range dialKinds {
		*d.field(k) += *o.field(k)
	}
}

// dialKindOf sorts a failed dial by ErrorKind, the module's one classifier.
func dialKindOf(err error) dialKind {
	switch ErrorKind(err) {
	case "dns":
		return dialDNS
	case "refused", "reset":
		return dialRefused
	case "timeout":
		return dialTimeout
	case "tls", "certificate":
		return dialTLS
	}
	return dialOther
}
