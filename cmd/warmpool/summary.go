package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/warmpool/warmpool"
)

// summary is the report of a -n run; -format json prints it as is.
type summary struct {
	URL               string         `json:"url"` // without query or user info
	Requested         int            `json:"requested"`
	Workers           int            `json:"workers"`
	Sent              int            `json:"sent"`
	OK                int            `json:"ok"`
	Errors            errorCounts    `json:"errors"`
	StatusCodes       map[string]int `json:"status_codes,omitempty"` // non-2xx answers by status
	Seconds           float64        `json:"seconds"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	// Latencies of the successful requests; zero when there is none.
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	Pool       poolSummary   `json:"pool"`
	Stopped    string        `json:"stopped,omitempty"` // why fewer than Requested were sent
	// Findings are the pool doctor's (doctor.Diagnose), worst first per
	// host; empty, not null, when the pool is healthy.
	Findings []finding `json:"findings"`
}

// failure is the error of a run of cmd that was stopped early or had failed
// requests, nil if every request succeeded.
func (s summary) failure(cmd string) error {
	switch {
	case s.Stopped != "":
		return fmt.Errorf("warmpool %s: stopped (%s) after %d of %d requests", cmd, s.Stopped, s.Sent, s.Requested)
	case s.Errors.total() > 0:
		return fmt.Errorf("warmpool %s: %d of %d requests failed", cmd, s.Errors.total(), s.Sent)
	}
	return nil
}

// errorCounts counts failed requests by kind, as warmpool.ErrorKind names
// them. In the JSON summary every kind is there, 0 if none failed so.
type errorCounts map[string]int

func newErrorCounts() errorCounts {
	e := errorCounts{}
	for _, k := range warmpool.ErrorKinds() {
		e[k] = 0
	}
	return e
}

func (e errorCounts) merge(o errorCounts) {
	for k, n := range o {
		e[k] += n
	}
}

func (e errorCounts) total() int {
	n := 0
	for _, c := range e {
		n += c
	}
	return n
}

// String lists the kinds that occurred, in warmpool.ErrorKinds order:
// "2 refused, 1 timeout"; "" for none.
func (e errorCounts) String() string {
	var parts []string
	for _, k := range warmpool.ErrorKinds() {
		if e[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", e[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// percentiles returns the nearest-rank p50 and p99 of ds, sorting it.
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)]
	}
	return rank(0.50), rank(0.99)
}

// writeSummary prints s as one JSON object, or as text for people: the load
// figures, one line on the pool, with poolDetail the doctor's fuller view of
// the pool, and the findings.
func writeSummary(w io.Writer, s summary, format string, poolDetail bool) error {
	if format == "json" {
		if s.Findings == nil {
			s.Findings = []finding{}
		}
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("warmpool: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "url           %s\n", s.URL)
	fmt.Fprintf(&b, "requests      %d sent of %d, %d %s, in %s (%.1f req/s)\n",
		s.Sent, s.Requested, s.Workers, plural(s.Workers, "worker"), roundDuration(time.Duration(s.Seconds*float64(time.Second))), s.RequestsPerSecond)
	if s.Stopped != "" {
		fmt.Fprintf(&b, "stopped       %s\n", s.Stopped)
	}
	fmt.Fprintf(&b, "ok            %d\n", s.OK)
	if n := s.Errors.total(); n > 0 {
		fmt.Fprintf(&b, "errors        %d (%s)\n", n, s.Errors)
	} else {
		b.WriteString("errors        0\n")
	}
	if len(s.StatusCodes) > 0 {
		var codes []string
		for _, code := range slices.Sorted(maps.Keys(s.StatusCodes)) {
			codes = append(codes, fmt.Sprintf("%s×%d", code, s.StatusCodes[code]))
		}
		fmt.Fprintf(&b, "status codes  %s\n", strings.Join(codes, ", "))
	}
	if s.OK > 0 {
		fmt.Fprintf(&b, "latency       p50 %s, p99 %s (successful requests)\n", roundDuration(s.LatencyP50), roundDuration(s.LatencyP99))
	}
	p := s.Pool
	fmt.Fprintf(&b, "connections   %d created, reuse rate %.1f%%, %d open (%d idle) at end, %d pool timeouts\n",
		p.Created, 100*p.ReuseRate, p.Open, p.Idle, p.PoolTimeouts)
	if poolDetail {
		writePoolDetail(&b, p)
	}
	writeFindings(&b, s.Findings)
	_, err := io.WriteString(w, b.String())
	return err
}

// roundDuration keeps three significant figures or so: 612µs, 2.31ms, 1.52s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
