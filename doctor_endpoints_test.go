package warmpool

import (
	"strings"
	"testing"
)

func TestEndpointRules(t *testing.T) {
	ep := func(requests, ejections int64, state string) HostStats {
		return HostStats{HostName: "api.test", EndpointState: state, Requests: requests, Ejections: ejections}
	}
	fleet := func(hosts ...HostStats) Stats {
		s := Stats{Hosts: map[string]HostStats{}}
		for i, h := range hosts {
			s.Hosts["10.0.0."+string(rune('1'+i))+":443"] = h
		}
		return s
	}
	tests := []struct {
		name     string
		stats    Stats
		balancer string
		rule     string // "" for no endpoint finding
		message  string
	}{
		{"even", fleet(ep(100, 0, "active"), ep(110, 0, "active"), ep(95, 0, "active")), balancerP2C, "", ""},
		{"pinned by first", fleet(ep(300, 0, "active"), ep(0, 0, "active"), ep(0, 0, "active")), balancerFirst,
			"endpoint-pinned", "10.0.0.1:443 took 100 % of the requests to api.test:443 while 2 other endpoints exist (balancer first)"},
		{"skewed", fleet(ep(200, 0, "active"), ep(60, 0, "active"), ep(40, 0, "active")), balancerP2C,
			"endpoint-skew", "10.0.0.1:443 took 67 %, 2.0× an even share of 33 %, and 10.0.0.3:443 only 13 %"},
		{"removed endpoints do not count", fleet(ep(200, 0, "active"), ep(190, 0, "active"), ep(5, 0, "removed")), balancerP2C, "", ""},
		{"too few requests", fleet(ep(30, 0, "active"), ep(0, 0, "active")), balancerFirst, "", ""},
		{"frequent ejections", fleet(ep(100, 0, "active"), ep(90, 3, "ejected"), ep(100, 0, "active")), balancerP2C,
			"frequent-ejections", "endpoint 10.0.0.2:443 of api.test:443 was ejected 3 times after 5 failures in a row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Finding
			for _, f := range Diagnose(tt.stats, Config{Balancer: tt.balancer}) {
				if strings.HasPrefix(f.Rule, "endpoint-") || f.Rule == "frequent-ejections" {
					got = append(got, f)
				}
			}
			if tt.rule == "" {
				if len(got) > 0 {
					t.Errorf("got %v, want no endpoint finding", got)
				}
				return
			}
			if len(got) != 1 || got[0].Rule != tt.rule || !strings.Contains(got[0].Message, tt.message) {
				t.Errorf("got %v, want one %s finding containing %q", got, tt.rule, tt.message)
			}
		})
	}
}
