package bench

import (
	"strconv"
	"strings"
)

// FormatInt formats n with thousands separators: 12,345, as the progress
// lines and package report show counts.
func FormatInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// FormatRate formats a rate per second: whole above 100 (12,345), one
// decimal below (42.5).
func FormatRate(r float64) string {
	if r >= 100 {
		return FormatInt(int64(r + 0.5))
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}
