package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		wantErr string // substring; "" for valid
	}{
		{"zero value", Settings{}, ""},
		{"all flags", Settings{Protos: []string{"tls", "h2c"}, Modes: []string{"warmpool", "tuned"}, Duration: time.Second, Requests: 10, Concurrency: 4, Rate: 100, RTT: 10 * time.Millisecond, Jitter: time.Millisecond, BandwidthKBps: 100}, ""},
		{"concurrency too high", Settings{Concurrency: MaxConcurrency + 1}, "concurrency"},
		{"negative concurrency", Settings{Concurrency: -1}, "concurrency"},
		{"too many rounds", Settings{Rounds: MaxRounds + 1}, "rounds"},
		{"fewer requests than rounds", Settings{Rounds: 3, Requests: 2}, "rounds"},
		{"negative duration", Settings{Duration: -time.Second}, "duration"},
		{"negative requests", Settings{Requests: -1}, "request"},
		{"negative rate", Settings{Rate: -1}, "rate"},
		{"sub-millisecond rtt", Settings{RTT: 1500 * time.Microsecond}, "rtt"},
		{"jitter without rtt", Settings{Jitter: time.Millisecond}, "jitter"},
		{"negative bandwidth", Settings{BandwidthKBps: -1}, "bandwidth"},
		{"unknown mode", Settings{Modes: []string{"warmpool", "fast"}}, `unknown mode "fast"`},
		{"mode twice", Settings{Modes: []string{"tuned", "tuned"}}, "twice"},
		{"unknown proto", Settings{Protos: []string{"quic"}}, `unknown proto "quic"`},
		{"body not JSON", Settings{Body: []byte("{question")}, "JSON"},
		{"target https", Settings{Target: "https://127.0.0.1:8443/answer"}, ""},
		{"target http h2c", Settings{Target: "http://127.0.0.1:8080/answer", Protos: []string{"h2c"}}, ""},
		{"target with tls proto", Settings{Target: "http://127.0.0.1:8080/answer", Protos: []string{"tls"}}, "scheme decides"},
		{"target relative", Settings{Target: "/answer"}, "want an http"},
		{"target ftp", Settings{Target: "ftp://127.0.0.1/x"}, "want an http"},
		{"token mode none", Settings{TokenMode: TokenNone}, ""},
		{"token per-request", Settings{TokenMode: TokenPerRequest, TokenFetch: time.Millisecond}, ""},
		{"token cached, default fetch", Settings{TokenMode: TokenCached}, ""},
		{"token fetch at the maximum", Settings{TokenMode: TokenCached, TokenFetch: MaxTokenFetch}, ""},
		{"unknown token mode", Settings{TokenMode: "sometimes"}, `unknown token mode "sometimes"`},
		{"token fetch without mode", Settings{TokenFetch: time.Millisecond}, "needs a token mode"},
		{"negative token fetch", Settings{TokenMode: TokenCached, TokenFetch: -time.Millisecond}, "token fetch"},
		{"token fetch too long", Settings{TokenMode: TokenPerRequest, TokenFetch: MaxTokenFetch + 1}, "token fetch"},
		{"token mode with target", Settings{TokenMode: TokenCached, Target: "http://127.0.0.1:8080/answer"}, "in-process server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSettingsDefaults(t *testing.T) {
	s, err := Settings{Modes: []string{ModeWarmpool, ModePerRequest}}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ModePerRequest, ModeWarmpool}; !slices.Equal(s.Modes, want) {
		t.Errorf("modes run in fixed order: got %v, want %v", s.Modes, want)
	}
	if !slices.Equal(s.Protos, DefaultProtos) || s.Concurrency != DefaultConcurrency || string(s.Body) != string(DefaultBody) {
		t.Errorf("defaults: got protos %v, concurrency %d, body %q", s.Protos, s.Concurrency, s.Body)
	}
	if n := len(DefaultBody); n < 200 || n > 220 {
		t.Errorf("default body: %d bytes, want about 210", n)
	}
	if s.TokenMode != TokenNone || s.TokenFetch != 0 {
		t.Errorf("token defaults: got mode %q, fetch %v; want none, 0", s.TokenMode, s.TokenFetch)
	}
	if s, _ := (Settings{TokenMode: TokenCached}).normalize(); s.TokenFetch != DefaultTokenFetch {
		t.Errorf("token fetch default: got %v, want %v", s.TokenFetch, DefaultTokenFetch)
	}
	s, _ = Settings{Target: "https://127.0.0.1:1/answer"}.normalize()
	if !slices.Equal(s.Protos, []string{ProtoTLS}) {
		t.Errorf("https target: got protos %v, want [tls]", s.Protos)
	}
}

func TestAutoDuration(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		runs int
		want time.Duration
	}{
		// 2 protocols × 6 modes, less warmpool-h2 over http and default-h1
		// over anything but tls.
		{"default", Settings{}, 10, ShortDuration},
		{"tls only", Settings{Protos: []string{"tls"}}, 6, DefaultDuration},
		{"http only", Settings{Protos: []string{"http"}}, 4, DefaultDuration},
		{"three protos", Settings{Protos: AllProtos}, 15, ShortDuration},
		{"given", Settings{Duration: time.Second}, 10, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.s.normalize()
			if err != nil {
				t.Fatal(err)
			}
			s = s.withDuration()
			if got := s.runCount(); got != tt.runs {
				t.Errorf("runs: got %d, want %d", got, tt.runs)
			}
			if s.Duration != tt.want {
				t.Errorf("duration: got %v, want %v", s.Duration, tt.want)
			}
			// The whole invocation stays under a minute by default.
			if total := time.Duration(s.runCount()) * s.Duration; tt.s.Duration == 0 && total > 45*time.Second {
				t.Errorf("%d runs × %v = %v: too close to a minute", s.runCount(), s.Duration, total)
			}
		})
	}
}

func TestSlice(t *testing.T) {
	s, err := Settings{Duration: 3 * time.Second, Requests: 37, Rounds: 3, Concurrency: 4, Rate: 10}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for r := range 3 {
		l := s.slice(r)
		if l.Duration != time.Second || l.Workers != 4 || l.Rate != 10 || l.Grace != stopGrace(time.Second) || l.Validate() != nil {
			t.Errorf("round %d: got %+v, want 1s at concurrency 4, rate 10, with its grace", r, l)
		}
		n += l.Requests
	}
	if n != 37 {
		t.Errorf("requests over the rounds: got %d, want 37", n)
	}
}
