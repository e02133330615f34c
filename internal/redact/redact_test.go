package redact

import "testing"

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:8080/answer", "http://127.0.0.1:8080/answer"},
		{"https://user:s3cret@api.test/answer?token=s3cret#frag", "https://api.test/answer"},
		{"http://api.test/answer?", "http://api.test/answer"},
		{"http://[::1]:namedport", "<unparsable URL>"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
