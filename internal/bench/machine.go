package bench

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where the benchmark ran; numbers mean little without it.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUModel   string `json:"cpu_model"` // "" when unknown
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	// LoadAvgStart and LoadAvgEnd are the 1-minute load average before the
	// first run and after the last (Linux; null elsewhere). Above about
	// half the CPUs, other processes compete with the benchmark for them.
	LoadAvgStart *float64 `json:"load_avg_start"`
	LoadAvgEnd   *float64 `json:"load_avg_end"`
}

func thisMachine() Machine {
	return Machine{
		OS:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		CPUModel:     cpuModel("/proc/cpuinfo"),
		NumCPU:       runtime.NumCPU(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		GoVersion:    runtime.Version(),
		LoadAvgStart: loadAvg("/proc/loadavg"),
	}
}

// loadAvg reads the 1-minute load average from a Linux loadavg file; nil if
// there is none.
func loadAvg(path string) *float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	v, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return nil
	}
	return &v
}

// cpuModel reads the first "model name" of a Linux cpuinfo file; "" if there
// is none (another OS, or an architecture that names it otherwise).
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}
