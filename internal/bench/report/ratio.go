package report

import "github.com/warmpool/warmpool/internal/bench"

// ratio compares m with base; nil if base has no throughput or latency to
// compare with.
func ratio(m, base *bench.ModeResult) *bench.Ratio {
	if base == nil || base.ReqPerS == 0 || base.Latency.P50 == 0 || m.OK == 0 || m.Latency.P50 == 0 {
		return nil
	}
	return &bench.Ratio{
		Throughput: m.ReqPerS / base.ReqPerS,
		P50Speedup: float64(base.Latency.P50) / float64(m.Latency.P50),
		P50:        float64(m.Latency.P50) / float64(base.Latency.P50),
	}
}

// computeRatios fills in each mode's ratios to per-request, default and
// tuned, within each protocol.
func computeRatios(r *bench.Report) {
	for i := range r.Protos {
		p := &r.Protos[i]
		per, def, tuned := findMode(p, bench.ModePerRequest), findMode(p, bench.ModeDefault), findMode(p, bench.ModeTuned)
		for j := range p.Modes {
			m := &p.Modes[j]
			m.VsPerRequest = ratio(m, per)
			m.VsDefault = ratio(m, def)
			m.VsTuned = ratio(m, tuned)
		}
	}
}
