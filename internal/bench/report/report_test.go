package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/bench"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr(n int64) *int64 { return &n }

// curvePercentiles are the points of bench's latency curves.
var curvePercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 100}

// syntheticMode is a run with round numbers derived from rps and p50.
func syntheticMode(mode string, proto string, rps float64, p50 int64, accepted int64) bench.ModeResult {
	n := int64(rps * 3)
	m := bench.ModeResult{
		Mode:      mode,
		Protocols: map[string]int64{proto: n},
		Requests:  n, OK: n,
		Errors:                   bench.ErrorCounts{},
		ErrorSamples:             []string{},
		ElapsedS:                 3,
		ReqPerS:                  rps,
		Latency:                  bench.Latency{Min: p50 / 4, Mean: float64(p50) * 1.2, P50: p50, P90: p50 * 2, P99: p50 * 4, P999: p50 * 8, Max: p50 * 10},
		ServerAccepted:           ptr(accepted),
		ServerAcceptedSecondHalf: ptr(accepted / 3),
		ServerPeakOpen:           ptr(min(accepted, 32)),
		ReuseRate:                1 - float64(accepted)/float64(n),
		Dials:                    accepted,
		DialUsPerRequest:         float64(accepted) * 50 / float64(n),
		TLSFrom:                  "httptrace",
		CPU:                      &bench.CPU{UserS: 1.5, SysS: 0.5, UsPerRequest: 2e6 / float64(n)},
		BytesSent:                n * 210,
		BytesReceived:            n * 961,
	}
	for _, p := range curvePercentiles {
		us := p50/4 + int64(p)*p50/50
		if p == 100 {
			us = m.Latency.Max
		}
		m.LatencyCurve = append(m.LatencyCurve, bench.CurvePoint{Percentile: p, Us: us})
	}
	return m
}

// syntheticReport is a fixed report for the golden files: no field depends
// on the machine or the clock.
func syntheticReport() *bench.Report { return syntheticTokenReport(bench.TokenNone) }

// syntheticTokenReport is syntheticReport with tokens of tokenMode from the
// in-process issuer, 5ms per fetch.
func syntheticTokenReport(tokenMode string) *bench.Report {
	r, err := bench.NewReport(bench.Settings{Concurrency: 32, TokenMode: tokenMode})
	if err != nil {
		panic(err)
	}
	r.StartedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lo, hi := 0.15, 0.4
	r.Machine = bench.Machine{OS: "linux", Arch: "amd64", CPUModel: "Synthetic CPU @ 3.00GHz", NumCPU: 2, GOMAXPROCS: 2, GoVersion: "go1.26.0", LoadAvgStart: &lo, LoadAvgEnd: &hi}

	httpModes := []bench.ModeResult{
		syntheticMode(bench.ModePerRequest, "HTTP/1.1", 4000, 7000, 12000),
		syntheticMode(bench.ModeDefault, "HTTP/1.1", 6000, 4500, 9000),
		syntheticMode(bench.ModeTuned, "HTTP/1.1", 14000, 2100, 32),
		syntheticMode(bench.ModeWarmpool, "HTTP/1.1", 13500, 2200, 32),
	}
	httpModes[1].Errors = bench.NewErrorCounts(map[string]int64{"reset": 2, "timeout": 1})
	httpModes[1].ErrorSamples = []string{"reset: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", "timeout: context deadline exceeded"}
	httpModes[1].Requests += 3
	httpModes[3].Pool = syntheticPool(warmpool.HostStats{Created: 32, Open: 32, Idle: 32, PeakInFlight: 32, Requests: 40500, Reused: 40468})
	h1 := warmpool.DefaultConfig()
	h1.DisableHTTP2 = true
	httpModes[3].HTTPClient = bench.HTTPClientKeys(h1)

	tlsModes := []bench.ModeResult{
		syntheticMode(bench.ModePerRequest, "HTTP/2.0", 900, 35000, 2700),
		syntheticMode(bench.ModeDefault, "HTTP/2.0", 9000, 3400, 1),
		syntheticMode(bench.ModeTuned, "HTTP/1.1", 12000, 2500, 33),
		syntheticMode(bench.ModeWarmpool, "HTTP/1.1", 11800, 2550, 32),
		syntheticMode(bench.ModeWarmpoolH2, "HTTP/2.0", 9500, 3300, 1),
	}
	for i := range tlsModes {
		m := &tlsModes[i]
		m.TLSHandshakes = *m.ServerAccepted
		m.TLSUsPerRequest = float64(m.TLSHandshakes) * 600 / float64(m.Requests)
	}
	tlsModes[3].TLSFrom = "warmpool Stats"
	tlsModes[3].Pool = syntheticPool(warmpool.HostStats{Created: 32, Open: 32, Idle: 32, PeakInFlight: 32, Requests: 35400, Reused: 35368, TLSHandshakes: 32})
	tlsModes[3].HTTPClient = bench.HTTPClientKeys(h1)
	tlsModes[4].Pool = syntheticPool(warmpool.HostStats{Created: 3, Open: 1, Idle: 1, PeakInFlight: 32, Requests: 28500, Reused: 28497, TLSHandshakes: 3,
		Closed: 2, ClosedBy: warmpool.CloseReasons{Server: 2}, Failures: 1, FailuresByKind: map[string]int64{"reset": 1},
		LearnedIdleTimeout: 5 * time.Second, LearnedIdleTimeoutFrom: "server close"},
		doctor.Finding{Rule: "server-closed-idle", Severity: doctor.SeverityWarning, Host: "127.0.0.1:40003",
			Message: "the server closed 2 idle connections", Fix: "set keepalive_expiry below the server's idle timeout", Value: 2})
	tlsModes[4].HTTPClient = bench.HTTPClientKeys(warmpool.DefaultConfig())
	tlsModes[4].ServerAccepted = nil // as for an external server without /stats
	tlsModes[4].ServerAcceptedSecondHalf = nil
	tlsModes[4].ServerPeakOpen = nil
	tlsModes[4].Open = &bench.Open{Scheduled: 30000, Unsent: 1500, Late: 200}

	r.Protos = []bench.ProtoResult{
		{
			Proto: bench.ProtoHTTP, URL: "http://127.0.0.1:40001/answer", Server: "in-process reference server, cleartext HTTP/1.1",
			Modes: httpModes, Skipped: []bench.Skipped{{Mode: bench.ModeWarmpoolH2, Reason: "HTTP/2 needs TLS or h2c; use -proto tls or -proto h2c"}}, Notes: []string{},
		},
		{
			Proto: bench.ProtoTLS, URL: "https://127.0.0.1:40003/answer", Server: "in-process reference server, TLS offering h2 and http/1.1 by ALPN",
			Proxy: &bench.ProxyResult{
				Kind: "toxiproxy v2.5.0, in-process on 127.0.0.1", RTTMs: 10, UpstreamMs: 5, DownstreamMs: 5, HandshakeMs: 10,
				DirectP50Us: 95, ProxiedP50Us: 160, OverheadP50Us: 65, NetworkP50Us: 10240, Requests: 200,
			},
			Modes: tlsModes, Skipped: []bench.Skipped{}, Notes: []string{"default: 2 connections still open at the server 3s after the run; the next mode started anyway"},
		},
	}
	if tokenMode != bench.TokenNone {
		for i := range r.Protos {
			for j := range r.Protos[i].Modes {
				m := &r.Protos[i].Modes[j]
				issued, spent := m.Requests, time.Duration(m.Requests)*5600*time.Microsecond
				if tokenMode == bench.TokenCached {
					issued, spent = 1, 6100*time.Microsecond
				}
				us := float64(spent.Nanoseconds()) / 1e3
				m.Token = &bench.TokenResult{IssuerFetches: issued, FetchUsMean: us / float64(issued), FetchUsPerRequest: us / float64(m.Requests)}
			}
		}
	}
	r.WarmpoolVersion = "v0.0.0-synthetic"
	Finish(r)
	return r
}

// syntheticPool is the pool summary of a warmpool client that called one
// host, with h as its figures.
func syntheticPool(h warmpool.HostStats, findings ...doctor.Finding) *bench.PoolSummary {
	host := h
	host.Protocol = "HTTP/1.1"
	st := warmpool.Stats{HostStats: h, Hosts: map[string]warmpool.HostStats{"127.0.0.1:40001": host}, Calls: h.Requests}
	return &bench.PoolSummary{Stats: st, ReuseRate: h.ReuseRate(), Findings: append([]doctor.Finding{}, findings...)}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s\n(run with -update if the change is intended)", name, got)
	}
}

func TestTextReportGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, syntheticReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt.golden", b.Bytes())
}

func TestJSONReportGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, syntheticReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json.golden", b.Bytes())

	// It is one JSON document that reads back into the same report.
	var back bench.Report
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON document")
	}
}

func TestTokenReportGolden(t *testing.T) {
	for _, mode := range []string{bench.TokenPerRequest, bench.TokenCached} {
		t.Run(mode, func(t *testing.T) {
			r := syntheticTokenReport(mode)
			var text, js bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			golden(t, "report-token-"+mode+".txt.golden", text.Bytes())
			golden(t, "report-token-"+mode+".json.golden", js.Bytes())
			var page bytes.Buffer
			if err := WriteHTML(&page, r); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"token mode: " + mode + ": ", "warmpool tokens: "} {
				if !bytes.Contains(page.Bytes(), []byte(want)) {
					t.Errorf("HTML report lacks %q", want)
				}
			}
		})
	}
}

func TestRatio(t *testing.T) {
	base := &bench.ModeResult{OK: 10, ReqPerS: 1000, Latency: bench.Latency{P50: 2000}}
	tests := []struct {
		name string
		m    bench.ModeResult
		base *bench.ModeResult
		want *bench.Ratio
	}{
		{"faster", bench.ModeResult{OK: 10, ReqPerS: 13000, Latency: bench.Latency{P50: 200}}, base, &bench.Ratio{Throughput: 13, P50Speedup: 10, P50: 0.1}},
		{"itself", *base, base, &bench.Ratio{Throughput: 1, P50Speedup: 1, P50: 1}},
		{"no base", bench.ModeResult{OK: 10, ReqPerS: 1, Latency: bench.Latency{P50: 1}}, nil, nil},
		{"base failed", bench.ModeResult{OK: 10, ReqPerS: 1, Latency: bench.Latency{P50: 1}}, &bench.ModeResult{}, nil},
		{"mode failed", bench.ModeResult{}, base, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ratio(&tt.m, tt.base)
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestComputeRatiosPerProtocol(t *testing.T) {
	r := syntheticReport()
	wp := r.Protos[1].Modes[3] // warmpool over tls
	if got, want := wp.VsPerRequest.Throughput, 11800.0/900; got != want {
		t.Errorf("tls warmpool vs per-request: got %v, want %v", got, want)
	}
	if got, want := wp.VsDefault.P50, 2550.0/3400; got != want {
		t.Errorf("tls warmpool p50 vs default: got %v, want %v", got, want)
	}
	if got, want := r.Protos[0].Modes[3].VsTuned.Throughput, 13500.0/14000; got != want {
		t.Errorf("http warmpool vs tuned: got %v, want %v", got, want)
	}
}
