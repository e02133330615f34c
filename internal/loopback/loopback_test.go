package loopback

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"127.0.0.1", true}, {"127.0.0.3", true}, {"::1", true},
		{"0:0:0:0:0:0:0:1", true}, {"10.0.0.1", false}, {"example.com", false}, {"", false}, {"[::1]", false},
	} {
		if got := Host(tc.host); got != tc.want {
			t.Errorf("Host(%q): got %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestAddr(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		want    bool
		wantErr bool
	}{
		{"127.0.0.1:8080", true, false}, {"[::1]:0", true, false}, {"localhost:80", true, false},
		{"192.0.2.1:80", false, false}, {"127.0.0.1", false, true},
	} {
		got, err := Addr(tc.addr)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Addr(%q): got %v, %v; want %v, error %v", tc.addr, got, err, tc.want, tc.wantErr)
		}
	}
}
