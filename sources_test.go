package warmpool

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// testJWT returns an unsigned JWT expiring at exp: enough for JWTExpiry.
func testJWT(t testing.TB, exp time.Time) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	claims, err := json.Marshal(map[string]any{"sub": "svc", "exp": exp.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + ".c2ln"
}

// checkNoLeak fails if err says more than it may: the token or what the
// source printed.
func checkNoLeak(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks %q", err, s)
		}
	}
}

func TestFileToken(t *testing.T) {
	hour := time.Now().Add(time.Hour).Truncate(time.Second)
	jwt, expired := testJWT(t, hour), testJWT(t, time.Now().Add(-time.Minute))
	tests := []struct {
		name, content string
		want          Token
		wantErr       string
	}{
		{"opaque, trimmed", "  " + secret + "\n", Token{Value: secret}, ""},
		{"JWT expiry", jwt + "\n", Token{Value: jwt, Expiry: hour}, ""},
		{"expired JWT", expired, Token{}, "expired at"},
		{"empty", " \n", Token{}, "is empty"},
		{"two tokens", secret + "\n" + secret, Token{}, "space, control or non-ASCII"},
		{"too long", strings.Repeat("x", maxTokenBytes+1), Token{}, "not a token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeTokenFile(t, path, tt.content)
			got, err := FileToken(path).Token(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("got %v, want an error naming %s and containing %q", err, path, tt.wantErr)
				}
				checkNoLeak(t, err, secret, expired)
				return
			}
			if err != nil || got.Value != tt.want.Value || !got.Expiry.Equal(tt.want.Expiry) {
				t.Fatalf("got %q expiring %v, %v; want %q expiring %v", got.Value, got.Expiry, err, tt.want.Value, tt.want.Expiry)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := FileToken(filepath.Join(t.TempDir(), "nope")).Token(context.Background())
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want os.ErrNotExist", err)
		}
	})
}

func writeTokenFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileTokenNoticesChanges(t *testing.T) {
	ctx := context.Background()
	get := func(src TokenSource) string {
		t.Helper()
		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		return tok.Value
	}
	t.Run("rewritten in place", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		writeTokenFile(t, path, "token-one")
		src := FileToken(path)
		if got := get(src); got != "token-one" {
			t.Fatalf("got %q, want token-one", got)
		}
		writeTokenFile(t, path, "token-two") // same size: the modification time tells
		later := time.Now().Add(time.Second)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		if got := get(src); got != "token-two" {
			t.Errorf("after a rewrite got %q, want token-two", got)
		}
	})
	t.Run("unchanged stat is not read again", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		writeTokenFile(t, path, "token-one")
		src := FileToken(path)
		get(src)
		fi, _ := os.Stat(path)
		writeTokenFile(t, path, "token-xxx")
		if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if got := get(src); got != "token-one" {
			t.Errorf("got %q, want the cached token-one: same file, size and time", got)
		}
	})
	t.Run("Kubernetes symlink swap", func(t *testing.T) {
		// The kubelet writes each version to a new directory and swaps the
		// ..data symlink to it; token is a symlink to ..data/token.
		dir := t.TempDir()
		version := func(name, tok string) {
			os.Mkdir(filepath.Join(dir, name), 0o700)
			writeTokenFile(t, filepath.Join(dir, name, "token"), tok)
			tmp := filepath.Join(dir, "..data_tmp")
			if err := os.Symlink(name, tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}
		version("v1", "token-one")
		if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
			t.Fatal(err)
		}
		src := FileToken(filepath.Join(dir, "token"))
		if got := get(src); got != "token-one" {
			t.Fatalf("got %q, want token-one", got)
		}
		version("v2", "token-two")
		if got := get(src); got != "token-two" {
			t.Errorf("after the swap got %q, want token-two", got)
		}
	})
}

// TestFileTokenRecheckedByCache runs in a synctest bubble: the minute to
// the recheck passes on the fake clock, and synctest.Wait waits for the
// background recheck (file reads are not blocking, so it ends by itself).
func TestFileTokenRecheckedByCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeTokenFile(t, path, "token-one")
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cache := CachedTokenSource(FileToken(path), 5*time.Minute)
		get := func() string {
			t.Helper()
			tok, err := cache.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			return tok.Value
		}
		get()
		writeTokenFile(t, path, "token-two!")
		time.Sleep(fileRecheck - time.Second)
		if got := get(); got != "token-one" {
			t.Fatalf("before the recheck got %q, want the cached token-one", got)
		}
		time.Sleep(time.Second)
		get() // due: served from the cache while the file is checked
		synctest.Wait()
		if f, _ := cache.FetchStats(); f != 2 {
			t.Fatalf("after the recheck: got %d fetches, want 2", f)
		}
		if got := get(); got != "token-two!" {
			t.Errorf("after the recheck got %q, want token-two!", got)
		}
		if f, _ := cache.FetchStats(); f != 2 {
			t.Errorf("got %d fetches, want 2", f)
		}
	})
}

func TestEnvToken(t *testing.T) {
	const name = "WARMPOOL_TEST_TOKEN_VAR"
	hour := time.Now().Add(time.Hour).Truncate(time.Second)
	jwt := testJWT(t, hour)
	tests := []struct {
		name    string
		value   *string
		want    Token
		wantErr string
	}{
		{"set", srcPtr(" " + secret + "\n"), Token{Value: secret}, ""},
		{"JWT", srcPtr(jwt), Token{Value: jwt, Expiry: hour}, ""},
		{"unset", nil, Token{}, name + " is not set"},
		{"empty", srcPtr(""), Token{}, name + " is empty"},
		{"expired", srcPtr(testJWT(t, time.Now().Add(-time.Second))), Token{}, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(name, "")
			if tt.value == nil {
				os.Unsetenv(name)
			} else {
				os.Setenv(name, *tt.value)
			}
			got, err := EnvToken(name).Token(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Value != tt.want.Value || !got.Expiry.Equal(tt.want.Expiry) {
				t.Fatalf("got %q expiring %v, %v; want %q expiring %v", got.Value, got.Expiry, err, tt.want.Value, tt.want.Expiry)
			}
		})
	}
}

func srcPtr[T any](v T) *T { return &v }

func TestCommandToken(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	hour := time.Now().Add(time.Hour).Truncate(time.Second)
	jwt := testJWT(t, hour)
	const stderrSecret = "stderr-s3cret"
	tests := []struct {
		name    string
		src     *CommandSource
		want    Token
		wantErr []string
	}{
		{"prints a token", &CommandSource{Argv: []string{"sh", "-c", "echo ' " + secret + "'"}}, Token{Value: secret}, nil},
		{"prints a JWT", &CommandSource{Argv: []string{"sh", "-c", "echo " + jwt}}, Token{Value: jwt, Expiry: hour}, nil},
		{"fails", &CommandSource{Argv: []string{"sh", "-c", "echo " + secret + "; echo " + stderrSecret + " >&2; exit 3"}},
			Token{}, []string{"token command sh failed", "exit status 3", "14 bytes on stderr, not shown"}},
		{"times out", &CommandSource{Argv: []string{"sh", "-c", "exec sleep 10"}, Timeout: 100 * time.Millisecond},
			Token{}, []string{"killed after its timeout of 100ms", "deadline exceeded"}},
		{"not found", &CommandSource{Argv: []string{"warmpool-no-such-command"}}, Token{}, []string{"executable file not found"}},
		{"prints nothing", &CommandSource{Argv: []string{"true"}}, Token{}, []string{"output is empty"}},
		{"prints too much", &CommandSource{Argv: []string{"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}},
			Token{}, []string{"printed over 65536 bytes"}},
		{"empty", &CommandSource{}, Token{}, []string{"token command is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := tt.src.Token(context.Background())
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got %q, want an error", got.Value)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("got %q, want it to contain %q", err, want)
					}
				}
				checkNoLeak(t, err, secret, stderrSecret)
				return
			}
			if err != nil || got.Value != tt.want.Value || !got.Expiry.Equal(tt.want.Expiry) {
				t.Fatalf("got %q expiring %v, %v; want %q expiring %v", got.Value, got.Expiry, err, tt.want.Value, tt.want.Expiry)
			}
		})
	}
	t.Run("caller's context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := CommandToken("sh", "-c", "exec sleep 10").Token(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "its timeout") {
			t.Errorf("got %v, want the caller's deadline, not the command timeout", err)
		}
	})
}

// registerTestType registers name once per process, so tests may run with
// -count.
func registerTestType(name string, f func(AuthConfig) (TokenSource, error)) {
	if registeredSourceType(name) == nil {
		RegisterTokenSourceType(name, f)
	}
}

func TestAuthConfigTokenSource(t *testing.T) {
	registerTestType("test-audience", func(a AuthConfig) (TokenSource, error) {
		if a.Audience == "" {
			return nil, fmt.Errorf("%w: test tokens name one", ErrAudienceRequired)
		}
		return StaticToken("for " + a.Audience), nil
	})
	path := filepath.Join(t.TempDir(), "token")
	writeTokenFile(t, path, "from-file")
	t.Setenv("WARMPOOL_TEST_AUTH_TOKEN", "from-env")
	tests := []struct {
		name    string
		cfg     AuthConfig
		want    string // token; "" for no source
		wantErr []string
	}{
		{"none", AuthConfig{}, "", nil},
		{"file", AuthConfig{Type: "file", Path: path}, "from-file", nil},
		{"env", AuthConfig{Type: "env", Env: "WARMPOOL_TEST_AUTH_TOKEN"}, "from-env", nil},
		{"command", AuthConfig{Type: "command", Command: []string{"echo", "from-command"}}, "from-command", nil},
		{"static", AuthConfig{Type: "static", Token: secret}, secret, nil},
		{"registered", AuthConfig{Type: "test-audience", Audience: "https://b"}, "for https://b", nil},
		{"registered, no audience", AuthConfig{Type: "test-audience"}, "",
			[]string{"warmpool: auth.type test-audience: auth.audience is required: test tokens name one"}},
		{"gcp not imported", AuthConfig{Type: "gcp", Audience: "https://b"}, "",
			[]string{`auth.type = "gcp"`, `import _ "github.com/warmpool/warmpool/gcp"`}},
		{"invalid", AuthConfig{Type: "file"}, "", []string{"auth.path: required by auth.type file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := tt.cfg.TokenSource()
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("got no error")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("got %q, want it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("TokenSource: %v", err)
			}
			if tt.want == "" {
				if src != nil {
					t.Errorf("got source %T, want none", src)
				}
				return
			}
			if tok, err := src.Token(context.Background()); err != nil || tok.Value != tt.want {
				t.Errorf("got %v, %v, want %q", tok, err, tt.want)
			}
		})
	}
}

func TestAuthConfigOption(t *testing.T) {
	registerTestType("test-audience", func(a AuthConfig) (TokenSource, error) {
		if a.Audience == "" {
			return nil, ErrAudienceRequired
		}
		return StaticToken("for " + a.Audience), nil
	})
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("Authorization") }))
	defer srv.Close()
	tests := []struct {
		name string
		cfg  AuthConfig
		want string // Authorization
	}{
		{"none", AuthConfig{}, ""},
		{"static", AuthConfig{Type: "static", Token: secret}, "Bearer " + secret},
		{"registered with an audience", AuthConfig{Type: "test-audience", Audience: "https://b"}, "Bearer for https://b"},
		{"registered, a token per origin", AuthConfig{Type: "test-audience"}, "Bearer for " + srv.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := tt.cfg.Option()
			if err != nil {
				t.Fatalf("Option: %v", err)
			}
			c := authClient(t, DefaultConfig(), opt)
			resp, err := c.HTTPClient().Get(srv.URL)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			if auth := <-got; auth != tt.want {
				t.Errorf("got Authorization %q, want %q", auth, tt.want)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		if _, err := (AuthConfig{Type: "gcp", Audience: "x"}).Option(); err == nil {
			t.Error("got no error for gcp without its import")
		}
	})
}
