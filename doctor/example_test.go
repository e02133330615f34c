package doctor_test

import (
	"fmt"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
)

func ExampleDiagnose() {
	// In a service: doctor.Diagnose(client.Stats(), client.Config()).
	s := warmpool.Stats{Hosts: map[string]warmpool.HostStats{
		"backend:443": {Requests: 1000, Reused: 850, Created: 150, ClosedBy: warmpool.CloseReasons{Server: 140}},
	}}
	for _, f := range doctor.Diagnose(s, warmpool.DefaultConfig()) {
		fmt.Println(f)
	}
	// Output:
	// warning: backend:443: the server closed 140 idle connections before keepalive_expiry (30s) ran out, making 14 % of requests open a new one: its idle timeout is shorter, and a request sent as it closes one can fail; fix: lower keepalive_expiry below the server's idle timeout (or raise the server's)
}
