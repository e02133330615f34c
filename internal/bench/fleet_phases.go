package bench

import (
	"math"
	"slices"
	"time"
)

// shareOf turns counts into shares of their sum, rounded to 0.001.
func shareOf(n []int64) []float64 {
	var sum int64
	for _, v := range n {
		sum += v
	}
	out := make([]float64, len(n))
	for i, v := range n {
		if sum > 0 {
			out[i] = round3(float64(v) / float64(sum))
		}
	}
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func delta(a, b []int64) []int64 {
	out := make([]int64, len(b))
	for i := range b {
		out[i] = b[i] - a[i]
	}
	return out
}

// fleetPhases splits the samples at the events and gives each backend's share
// in each part.
func fleetPhases(samples []fleetSample, s FleetSettings) []FleetPhase {
	end := samples[len(samples)-1].at
	cuts := []time.Duration{0}
	for _, at := range []time.Duration{s.AddAt, s.KillAt} {
		if at > 0 && !slices.Contains(cuts, at) {
			cuts = append(cuts, at)
		}
	}
	slices.Sort(cuts)
	cuts = append(cuts, end)
	var out []FleetPhase
	for k := 0; k+1 < len(cuts); k++ {
		from := sampleAtOrAfter(samples, cuts[k])
		to := sampleAtOrAfter(samples, cuts[k+1])
		out = append(out, FleetPhase{
			FromS: round3(cuts[k].Seconds()), ToS: round3(cuts[k+1].Seconds()),
			Share: shareOf(delta(samples[from].served, samples[to].served)),
		})
	}
	return out
}

// sampleAtOrAfter is the index of the first sample taken at or after at,
// or the last one.
func sampleAtOrAfter(samples []fleetSample, at time.Duration) int {
	for i, sm := range samples {
		if sm.at >= at {
			return i
		}
	}
	return len(samples) - 1
}

// shareWindow is the window over which a new backend's share is judged.
const shareWindow = 300 * time.Millisecond

// timeToShare is how long after AddAt backend idx first took 80 % of an
// even share of a shareWindow that began after the event; -1 if never.
func timeToShare(samples []fleetSample, s FleetSettings, idx int) float64 {
	for i, sm := range samples {
		if sm.at < s.AddAt+shareWindow {
			continue
		}
		j := i
		for j > 0 && sm.at-samples[j].at < shareWindow {
			j--
		}
		if samples[j].at < s.AddAt {
			continue
		}
		live := s.Backends + 1
		if s.KillAt > 0 && samples[j].at >= s.KillAt {
			live--
		}
		if sh := shareOf(delta(samples[j].served, sm.served)); sh[idx] >= 0.8/float64(live) {
			return round3((sm.at - s.AddAt).Seconds())
		}
	}
	return -1
}
