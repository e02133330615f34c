package bench

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
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr(n int64) *int64 { return &n }

// syntheticMode is a run with round numbers derived from rps and p50.
func syntheticMode(mode string, proto string, rps float64, p50 int64, accepted int64) ModeResult {
	n := int64(rps * 3)
	m := ModeResult{
		Mode:      mode,
		Protocols: map[string]int64{proto: n},
		Requests:  n, OK: n,
		Errors:                   ErrorCounts{},
		ErrorSamples:             []string{},
		ElapsedS:                 3,
		ReqPerS:                  rps,
		Latency:                  Latency{Min: p50 / 4, Mean: float64(p50) * 1.2, P50: p50, P90: p50 * 2, P99: p50 * 4, P999: p50 * 8, Max: p50 * 10},
		ServerAccepted:           ptr(accepted),
		ServerAcceptedSecondHalf: ptr(accepted / 3),
		ServerPeakOpen:           ptr(min(accepted, 32)),
		ReuseRate:                1 - float64(accepted)/float64(n),
		Dials:                    accepted,
		DialUsPerRequest:         float64(accepted) * 50 / float64(n),
		TLSFrom:                  "httptrace",
		CPU:                      &CPU{UserS: 1.5, SysS: 0.5, UsPerRequest: 2e6 / float64(n)},
		BytesSent:                n * 210,
		BytesReceived:            n * 961,
	}
	for _, p := range curvePercentiles {
		us := p50/4 + int64(p)*p50/50
		if p == 100 {
			us = m.Latency.Max
		}
		m.LatencyCurve = append(m.LatencyCurve, CurvePoint{Percentile: p, Us: us})
	}
	return m
}

// syntheticReport is a fixed report for the golden files: no field depends
// on the machine or the clock.
func syntheticReport() *Report { return syntheticTokenReport(TokenNone) }

// syntheticTokenReport is syntheticReport with tokens of tokenMode from the
// in-process issuer, 5ms per fetch.
func syntheticTokenReport(tokenMode string) *Report {
	s, _ := Settings{Concurrency: 32, TokenMode: tokenMode}.normalize()
	s = s.withDuration()
	r := newReport(s)
	r.StartedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lo, hi := 0.15, 0.4
	r.Machine = Machine{OS: "linux", Arch: "amd64", CPUModel: "Synthetic CPU @ 3.00GHz", NumCPU: 2, GOMAXPROCS: 2, GoVersion: "go1.26.0", LoadAvgStart: &lo, LoadAvgEnd: &hi}

	httpModes := []ModeResult{
		syntheticMode(ModePerRequest, "HTTP/1.1", 4000, 7000, 12000),
		syntheticMode(ModeDefault, "HTTP/1.1", 6000, 4500, 9000),
		syntheticMode(ModeTuned, "HTTP/1.1", 14000, 2100, 32),
		syntheticMode(ModeWarmpool, "HTTP/1.1", 13500, 2200, 32),
	}
	httpModes[1].Errors = newErrorCounts(map[string]int64{"reset": 2, "timeout": 1})
	httpModes[1].ErrorSamples = []string{"reset: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", "timeout: context deadline exceeded"}
	httpModes[1].Requests += 3
	httpModes[3].Pool = syntheticPool(warmpool.HostStats{Created: 32, Open: 32, Idle: 32, PeakInFlight: 32, Requests: 40500, Reused: 40468})
	h1 := warmpool.DefaultConfig()
	h1.EnableHTTP2 = false
	httpModes[3].HTTPClient = httpClientKeys(h1)

	tlsModes := []ModeResult{
		syntheticMode(ModePerRequest, "HTTP/2.0", 900, 35000, 2700),
		syntheticMode(ModeDefault, "HTTP/2.0", 9000, 3400, 1),
		syntheticMode(ModeTuned, "HTTP/1.1", 12000, 2500, 33),
		syntheticMode(ModeWarmpool, "HTTP/1.1", 11800, 2550, 32),
		syntheticMode(ModeWarmpoolH2, "HTTP/2.0", 9500, 3300, 1),
	}
	for i := range tlsModes {
		m := &tlsModes[i]
		m.TLSHandshakes = *m.ServerAccepted
		m.TLSUsPerRequest = float64(m.TLSHandshakes) * 600 / float64(m.Requests)
	}
	tlsModes[3].TLSFrom = "warmpool Stats"
	tlsModes[3].Pool = syntheticPool(warmpool.HostStats{Created: 32, Open: 32, Idle: 32, PeakInFlight: 32, Requests: 35400, Reused: 35368, TLSHandshakes: 32})
	tlsModes[3].HTTPClient = httpClientKeys(h1)
	tlsModes[4].Pool = syntheticPool(warmpool.HostStats{Created: 3, Open: 1, Idle: 1, PeakInFlight: 32, Requests: 28500, Reused: 28497, TLSHandshakes: 3,
		Closed: 2, ClosedBy: warmpool.CloseReasons{Server: 2}, Failures: 1, FailuresByKind: map[string]int64{"reset": 1},
		LearnedIdleTimeout: 5 * time.Second, LearnedIdleTimeoutFrom: "server close"},
		doctor.Finding{Rule: "server-closed-idle", Severity: doctor.SeverityWarning, Host: "127.0.0.1:40003",
			Message: "the server closed 2 idle connections", Fix: "set keepalive_expiry below the server's idle timeout", Value: 2})
	tlsModes[4].HTTPClient = httpClientKeys(warmpool.DefaultConfig())
	tlsModes[4].ServerAccepted = nil // as for an external server without /stats
	tlsModes[4].ServerAcceptedSecondHalf = nil
	tlsModes[4].ServerPeakOpen = nil
	tlsModes[4].Open = &Open{Scheduled: 30000, Unsent: 1500, Late: 200}

	r.Protos = []ProtoResult{
		{
			Proto: ProtoHTTP, URL: "http://127.0.0.1:40001/answer", Server: "in-process reference server, cleartext HTTP/1.1",
			Modes: httpModes, Skipped: []Skipped{{Mode: ModeWarmpoolH2, Reason: skipReason(ModeWarmpoolH2, ProtoHTTP)}}, Notes: []string{},
		},
		{
			Proto: ProtoTLS, URL: "https://127.0.0.1:40003/answer", Server: "in-process reference server, TLS offering h2 and http/1.1 by ALPN",
			Proxy: &ProxyResult{
				Kind: "toxiproxy v2.5.0, in-process on 127.0.0.1", RTTMs: 10, UpstreamMs: 5, DownstreamMs: 5, HandshakeMs: 10,
				DirectP50Us: 95, ProxiedP50Us: 160, OverheadP50Us: 65, NetworkP50Us: 10240, Requests: 200,
			},
			Modes: tlsModes, Skipped: []Skipped{}, Notes: []string{"default: 2 connections still open at the server 3s after the run; the next mode started anyway"},
		},
	}
	if tokenMode != TokenNone {
		for i := range r.Protos {
			for j := range r.Protos[i].Modes {
				m := &r.Protos[i].Modes[j]
				f := &tokenFigures{issued: m.Requests, calls: m.Requests, spent: time.Duration(m.Requests) * 5600 * time.Microsecond}
				if tokenMode == TokenCached {
					f = &tokenFigures{issued: 1, calls: 1, spent: 6100 * time.Microsecond}
				}
				m.Token = f.result(m.Requests)
			}
		}
	}
	r.WarmpoolVersion = "v0.0.0-synthetic"
	r.finish()
	return r
}

// syntheticPool is the pool summary of a warmpool client that called one
// host, with h as its figures.
func syntheticPool(h warmpool.HostStats, findings ...doctor.Finding) *PoolSummary {
	host := h
	host.Protocol = "HTTP/1.1"
	st := warmpool.Stats{HostStats: h, Hosts: map[string]warmpool.HostStats{"127.0.0.1:40001": host}, Calls: h.Requests}
	return &PoolSummary{Stats: st, ReuseRate: h.ReuseRate(), Findings: append([]doctor.Finding{}, findings...)}
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
	var back Report
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
	for _, mode := range []string{TokenPerRequest, TokenCached} {
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
	base := &ModeResult{OK: 10, ReqPerS: 1000, Latency: Latency{P50: 2000}}
	tests := []struct {
		name string
		m    ModeResult
		base *ModeResult
		want *Ratio
	}{
		{"faster", ModeResult{OK: 10, ReqPerS: 13000, Latency: Latency{P50: 200}}, base, &Ratio{Throughput: 13, P50Speedup: 10, P50: 0.1}},
		{"itself", *base, base, &Ratio{Throughput: 1, P50Speedup: 1, P50: 1}},
		{"no base", ModeResult{OK: 10, ReqPerS: 1, Latency: Latency{P50: 1}}, nil, nil},
		{"base failed", ModeResult{OK: 10, ReqPerS: 1, Latency: Latency{P50: 1}}, &ModeResult{}, nil},
		{"mode failed", ModeResult{}, base, nil},
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

func TestCPUDelta(t *testing.T) {
	before := cpuTime{user: 2 * time.Second, sys: 500 * time.Millisecond}
	after := cpuTime{user: 3 * time.Second, sys: 800 * time.Millisecond}
	d := after.sub(before)
	if d.user != time.Second || d.sys != 300*time.Millisecond {
		t.Fatalf("sub: got %+v, want 1s user, 300ms sys", d)
	}
	got := cpuReport(d, 1300)
	want := &CPU{UserS: 1, SysS: 0.3, UsPerRequest: 1000}
	if *got != *want {
		t.Errorf("cpuReport: got %+v, want %+v", got, want)
	}
	if cpuReport(d, 0) != nil {
		t.Error("cpuReport with no requests: want nil")
	}
}

func TestCPUMeterMeasuresWork(t *testing.T) {
	m := startCPU()
	if !m.ok {
		t.Skip("getrusage not available")
	}
	// Spin until the process has used 20ms more CPU (on a busy machine that
	// takes longer than 20ms of wall time), at most 5s.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if now, _ := cpuTimes(); now.sub(m.start).user+now.sub(m.start).sys >= 20*time.Millisecond {
			break
		}
	}
	used, ok := m.stop()
	if !ok || used.user+used.sys < 20*time.Millisecond {
		t.Errorf("got %+v, want ≥ 20ms of CPU", used)
	}
}

func TestCPUModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpuinfo")
	os.WriteFile(path, []byte("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU 9000\nflags\t: a b\n"), 0o644)
	if got := cpuModel(path); got != "Example CPU 9000" {
		t.Errorf("got %q", got)
	}
	if got := cpuModel(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("missing file: got %q, want empty", got)
	}
}

func TestLoadAvg(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loadavg")
	os.WriteFile(path, []byte("1.25 0.80 0.50 2/345 6789\n"), 0o644)
	if got := loadAvg(path); got == nil || *got != 1.25 {
		t.Errorf("got %v, want 1.25", got)
	}
	if got := loadAvg(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Errorf("missing file: got %v, want nil", *got)
	}
}
