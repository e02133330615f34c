package backend

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warmpool/warmpool/examples/answerapp/externalapi"
	"github.com/warmpool/warmpool/examples/answerapp/idtoken"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// start runs an external API stub and a backend calling it, until the
// test ends.
func start(t *testing.T) (*Server, *externalapi.Server, *idtoken.Issuer) {
	t.Helper()
	ext, err := externalapi.Start(externalapi.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := idtoken.NewIssuer(idtoken.NewKey())
	cc := ClientConfig()
	cc.RetryBackoffFactor = 0.01 // the external API down: retried at once
	b, err := Start(Config{ExternalURL: ext.URL(), Issuer: iss, Audience: "backend", MaxQuestion: 20, Logger: quiet, Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("backend shutdown: %v", err)
		}
		ext.Shutdown(ctx) // already down in some tests
	})
	return b, ext, iss
}

func post(t *testing.T, url, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAnswer(t *testing.T) {
	b, ext, iss := start(t)
	good := "Bearer " + iss.Mint("backend", time.Hour).Value
	tests := []struct {
		name, auth, body string
		code             int
		want             string
	}{
		{"a question", good, `{"question":"why pool?"}`, 200, `"answer":"You asked \"why pool?\"`},
		{"no token", "", `{"question":"why?"}`, 401, "no bearer ID token"},
		{"expired token", "Bearer " + iss.Mint("backend", -time.Minute).Value, `{"question":"why?"}`, 401, "invalid ID token: token expired"},
		{"token for another audience", "Bearer " + iss.Mint("other", time.Hour).Value, `{"question":"why?"}`, 401, "another audience"},
		{"empty question", good, `{"question":"   "}`, 422, "empty question"},
		{"no question", good, `{}`, 422, "empty question"},
		{"not JSON", good, `question=why`, 400, `want a JSON body`},
		{"over the limit", good, `{"question":"` + strings.Repeat("é", 21) + `"}`, 413, `"question too long: 21 characters; the limit is 20","limit":20`},
		{"far over the limit", good, `{"question":"` + strings.Repeat("x", 500) + `"}`, 413, `"limit":20`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, b.URL()+"/answer", tt.auth, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %s, want %d with %s", code, body, tt.code, tt.want)
			}
			if tok, _ := strings.CutPrefix(tt.auth, "Bearer "); tok != "" && strings.Contains(body, tok) {
				t.Error("the answer shows the token")
			}
		})
	}
	if st := b.Client().Stats(); st.Requests != ext.Requests() || st.Created != ext.Accepted() || st.Requests != 1 {
		t.Errorf("the backend's client: %d requests on %d connections; the external API got %d on %d; want 1 on 1",
			st.Requests, st.Created, ext.Requests(), ext.Accepted())
	}

	t.Run("external API down", func(t *testing.T) {
		ext.Shutdown(context.Background())
		code, body := post(t, b.URL()+"/answer", good, `{"question":"anyone?"}`)
		if code != http.StatusBadGateway || !strings.Contains(body, `"kind":"refused"`) {
			t.Errorf("got %d %s, want 502 of kind refused", code, body)
		}
	})
}
