package warmpool

import (
	"strings"
	"testing"
	"time"
)

func TestStatsString(t *testing.T) {
	h := HostStats{
		Protocol: "HTTP/1.1", Open: 2, InUse: 1, Idle: 1, Created: 3, Closed: 1, ClosedBy: CloseReasons{Server: 1},
		Requests: 10, Reused: 7, Failures: 1, FailuresByKind: map[string]int64{"idle_race": 1},
		LearnedIdleTimeout: 5 * time.Second, LearnedIdleTimeoutFrom: "server close",
	}
	s := Stats{HostStats: h, Hosts: map[string]HostStats{"backend:443": h}, Calls: 9, CallsFailed: 1, Retries: 1}
	want := "warmpool: 9 calls (1 failed), 10 attempts, reuse 70.0 %, 1 retries (0 refused by the budget), 0 token fetches\n" +
		"  backend:443 HTTP/1.1: open 2 (1 in use, 1 idle), created 3, closed 1 (server 1); requests 10, reused 7; " +
		"waits 0, pool timeouts 0; failures 1 (idle_race 1); server idle timeout 5s (from the server close)"
	if got := s.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := (Stats{}).String(); strings.Contains(got, "\n") {
		t.Errorf("empty stats: got %q, want one line", got)
	}
}
