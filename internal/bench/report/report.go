// Package report concludes and writes what package bench measured: the
// ratios between modes, the verdicts and hints (Finish), the definitions of
// every field of the JSON report, and the text, JSON and HTML (with SVG
// charts) forms of a run's report, and of a fleet run's. It reads only
// bench's exported report types, so it reads alone; the golden files of
// every form live here.
package report

import (
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/bench"
)

// Finish concludes r from its figures: each mode's ratios to per-request,
// default and tuned within its protocol, the hints, each protocol's verdict
// and the overall one, and the definitions of every field. The writers
// expect a finished report; Finish may be called again after r changes.
func Finish(r *bench.Report) {
	computeRatios(r)
	r.Hints = hints(r)
	for i := range r.Protos {
		r.Protos[i].Verdict = sentence(protoVerdict(&r.Protos[i], r.Partial))
	}
	r.Verdict = sentence(overallVerdict(r))
	r.Definitions = definitions
}

// WriteJSON writes the report as one indented JSON document. Field names are
// snake_case and stable (see SchemaVersion); unknown figures are null.
func WriteJSON(w io.Writer, r *bench.Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// errorKinds lists the kinds that occurred, most frequent first, then in
// warmpool.ErrorKinds order, as "2 reset, 1 timeout"; "-" for none.
func errorKinds(c bench.ErrorCounts) string {
	if c.Total == 0 {
		return "-"
	}
	order := warmpool.ErrorKinds()
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	ks := slices.SortedFunc(maps.Keys(c.ByKind), func(a, b string) int {
		if c.ByKind[a] != c.ByKind[b] {
			if c.ByKind[a] > c.ByKind[b] {
				return -1
			}
			return 1
		}
		return rank(a) - rank(b)
	})
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += strconv.FormatInt(c.ByKind[k], 10) + " " + k
	}
	return s
}
