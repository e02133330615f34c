package warmpoolotel_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/warmpool/warmpool"
	warmpoolotel "github.com/warmpool/warmpool/otel"
)

func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"answer":42}`)
	}))
	defer backend.Close()

	// The program's SDK; a ManualReader here, a periodic OTLP exporter in
	// production.
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	// 1. The instruments, 2. the client with their hooks, 3. its Stats.
	metrics, err := warmpoolotel.New(provider)
	if err != nil {
		log.Fatal(err)
	}
	client, err := warmpool.New(warmpool.DefaultConfig(), warmpool.WithHooks(metrics.Hooks()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	reg, err := metrics.RegisterStats(client)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	for range 3 {
		if err := client.PostJSON(context.Background(), backend.URL, map[string]string{"question": "?"}, nil); err != nil {
			log.Fatal(err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch data := m.Data.(type) {
		case metricdata.Histogram[float64]:
			if m.Name == "http.client.request.duration" {
				fmt.Printf("%s: %d requests\n", m.Name, data.DataPoints[0].Count)
			}
		case metricdata.Sum[int64]:
			switch m.Name {
			case "warmpool.connections.created", "warmpool.attempts", "warmpool.attempts.reused":
				fmt.Printf("%s: %d\n", m.Name, data.DataPoints[0].Value)
			}
		}
	}
	// Output:
	// http.client.request.duration: 3 requests
	// warmpool.connections.created: 1
	// warmpool.attempts: 3
	// warmpool.attempts.reused: 2
}
