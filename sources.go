package warmpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// maxTokenBytes caps what a file or a command may hand over as a token.
// ID tokens are about 1 KiB; anything near this cap is not a token.
const maxTokenBytes = 64 << 10

// fileRecheck is how often a cache asks a FileToken source whether the file
// changed. Kubernetes replaces projected tokens at 80% of their lifetime
// (at least ten minutes), so a minute is prompt enough.
const fileRecheck = time.Minute

// FileToken returns a source that reads the token from the file at path,
// such as a Kubernetes projected service account token
// (/var/run/secrets/tokens/...), trimming surrounding whitespace.
//
// Each call costs a stat: the file is read again only when it changed (its
// identity, size or modification time, following symlinks, so the symlink
// swap Kubernetes uses to replace the file is seen). A JWT's exp claim gives
// the token's Expiry; any other token has none. Either way a CachedTokenSource
// over it asks it again every minute, in the background, and so picks up a
// rotated file within a minute (or at once after a 401). An expired JWT is an
// error rather than a token a server would reject.
func FileToken(path string) TokenSource { return &fileToken{path: path, now: time.Now} }

type fileToken struct {
	path string
	now  func() time.Time

	mu  sync.Mutex
	fi  os.FileInfo // of the file tok was read from; nil before the first read
	tok Token
}

func (f *fileToken) recheckInterval() time.Duration { return fileRecheck }

func (f *fileToken) Token(context.Context) (Token, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return Token{}, fmt.Errorf("warmpool: token file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fi == nil || !sameFileVersion(f.fi, fi) {
		if err := f.readLocked(); err != nil {
			return Token{}, err
		}
	}
	if err := checkExpiry(f.tok, f.now(), "token in file "+f.path); err != nil {
		return Token{}, err
	}
	return f.tok, nil
}

// readLocked reads the file, taking its FileInfo from the open file so that
// a swap between the stat and the read cannot pair old contents with new
// metadata. f.mu is held.
func (f *fileToken) readLocked() error {
	file, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("warmpool: token file: %w", err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("warmpool: token file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxTokenBytes+1))
	if err != nil {
		return fmt.Errorf("warmpool: token file: %w", err)
	}
	tok, err := parseToken(b, "token file "+f.path)
	if err != nil {
		return err
	}
	f.fi, f.tok = fi, tok
	return nil
}

func sameFileVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// EnvToken returns a source that reads the token from the environment
// variable name on every call, trimming surrounding whitespace. A JWT's exp
// claim gives the token's Expiry; an expired JWT is an error.
func EnvToken(name string) TokenSource {
	return TokenSourceFunc(func(context.Context) (Token, error) {
		v, ok := os.LookupEnv(name)
		if !ok {
			return Token{}, fmt.Errorf("warmpool: token variable %s is not set", name)
		}
		what := "token variable " + name
		tok, err := parseToken([]byte(v), what)
		if err != nil {
			return Token{}, err
		}
		return tok, checkExpiry(tok, time.Now(), what)
	})
}

// defaultCommandTimeout bounds a token command that sets no Timeout.
const defaultCommandTimeout = 10 * time.Second

// CommandToken returns a source that runs a command and takes its standard
// output, trimmed, as the token: for example
//
//	CommandToken("gcloud", "auth", "print-identity-token")
//
// It is a *CommandSource with the default timeout of ten seconds.
func CommandToken(argv ...string) TokenSource { return &CommandSource{Argv: slices.Clone(argv)} }

// CommandSource is a TokenSource that runs a command, with the process's
// environment and working directory and no standard input, and takes its
// standard output, trimmed, as the token. A JWT's exp claim gives the token's
// Expiry; any other token has none, so a cache keeps it until a server
// rejects it with 401.
//
// The command's standard error is discarded: tools print credentials,
// account names and URLs with tokens there, and errors reach logs. A failure
// reports the exit status and how many bytes went to standard error; run
// the command by hand to read them.
type CommandSource struct {
	// Argv is the program, looked up in PATH, and its arguments.
	Argv []string
	// Timeout bounds one run, after which the command is killed. Zero means
	// the default, 10s.
	Timeout time.Duration
}

// Token runs the command once.
func (s *CommandSource) Token(ctx context.Context) (Token, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return Token{}, errors.New("warmpool: token command is empty")
	}
	name := filepath.Base(s.Argv[0])
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = defaultCommandTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()

	var stdout cappedBuffer
	var stderr countingWriter
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A child the command left behind may hold the pipes open: stop
	// waiting for them shortly after the command itself ended.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case parent.Err() != nil:
		return Token{}, fmt.Errorf("warmpool: token command %s: %w", name, context.Cause(parent))
	case ctx.Err() != nil:
		return Token{}, fmt.Errorf("warmpool: token command %s killed after its timeout of %s: %w", name, timeout, ctx.Err())
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Token{}, fmt.Errorf("warmpool: token command %s failed: %w (%d bytes on stderr, not shown: they may hold secrets)", name, err, stderr.n)
		}
		return Token{}, fmt.Errorf("warmpool: token command %s: %w", name, err)
	case stdout.overflow:
		return Token{}, fmt.Errorf("warmpool: token command %s printed over %d bytes, not a token", name, maxTokenBytes)
	}
	what := "token command " + name + " output"
	tok, err := parseToken(stdout.buf, what)
	if err != nil {
		return Token{}, err
	}
	return tok, checkExpiry(tok, time.Now(), what)
}

// cappedBuffer keeps the first maxTokenBytes written to it and notes whether
// there was more. It accepts every write, so the command never blocks on a
// full pipe. (It does not embed bytes.Buffer, whose ReadFrom io.Copy would
// use instead of Write.)
type cappedBuffer struct {
	buf      []byte
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := maxTokenBytes - len(b.buf); n > room {
		b.overflow = true
		p = p[:max(room, 0)]
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// countingWriter discards what is written and counts it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// parseToken trims b and checks that it can be sent in a header; a JWT's exp
// claim becomes the Expiry. what names the origin of b in errors, which
// never contain b.
func parseToken(b []byte, what string) (Token, error) {
	if len(b) > maxTokenBytes {
		return Token{}, fmt.Errorf("warmpool: %s is over %d bytes, not a token", what, maxTokenBytes)
	}
	v := string(bytes.TrimSpace(b))
	if v == "" {
		return Token{}, fmt.Errorf("warmpool: %s is empty", what)
	}
	for _, r := range v {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) {
			return Token{}, fmt.Errorf("warmpool: %s holds a space, control or non-ASCII character: want one token", what)
		}
	}
	tok := Token{Value: v}
	if exp, err := JWTExpiry(v); err == nil {
		tok.Expiry = exp
	}
	return tok, nil
}

// checkExpiry fails for a token that has already expired.
func checkExpiry(tok Token, now time.Time, what string) error {
	if !tok.Expiry.IsZero() && !now.Before(tok.Expiry) {
		return fmt.Errorf("warmpool: %s expired at %s", what, tok.Expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

// ErrAudienceRequired is returned, wrapped, by a source type registered with
// RegisterTokenSourceType when its tokens name an audience and
// AuthConfig.Audience is empty. AuthConfig.Option then makes a source per
// target origin, with that origin as the audience. Its message has no
// "warmpool:" prefix: AuthConfig.TokenSource adds it with the type.
var ErrAudienceRequired = errors.New("auth.audience is required")

// builtinSourceTypes are the auth.type values the root package builds, with
// the one key each of them requires.
var builtinSourceTypes = map[string]string{"file": "path", "env": "env", "command": "command", "static": "token"}

// sourceTypes holds the types registered with RegisterTokenSourceType.
var sourceTypes struct {
	sync.RWMutex
	m map[string]func(AuthConfig) (TokenSource, error)
}

// RegisterTokenSourceType makes a kind of token source available as
// auth.type name, in the manner of database/sql drivers: package
// github.com/warmpool/warmpool/gcp registers "gcp" through it when it is
// imported. f
// builds a source from the config; it returns an error wrapping
// ErrAudienceRequired if its tokens need an audience and none is set. It
// panics if name is empty or taken, or f is nil.
func RegisterTokenSourceType(name string, f func(AuthConfig) (TokenSource, error)) {
	sourceTypes.Lock()
	defer sourceTypes.Unlock()
	_, builtin := builtinSourceTypes[name]
	_, dup := sourceTypes.m[name]
	switch {
	case name == "" || f == nil:
		panic("warmpool: RegisterTokenSourceType needs a name and a function")
	case builtin || dup:
		panic("warmpool: token source type " + name + " is already registered")
	}
	if sourceTypes.m == nil {
		sourceTypes.m = map[string]func(AuthConfig) (TokenSource, error){}
	}
	sourceTypes.m[name] = f
}

func registeredSourceType(name string) func(AuthConfig) (TokenSource, error) {
	sourceTypes.RLock()
	defer sourceTypes.RUnlock()
	return sourceTypes.m[name]
}

// moduleSourceTypes are the auth.type values that a package of this module
// registers, like any other, when a program imports it, with that package.
// A config naming one loads in a program without the import, so that one
// file serves programs that do and do not use it; building its source then
// fails, saying what to import.
var moduleSourceTypes = map[string]string{"gcp": "github.com/warmpool/warmpool/gcp"}

// sourceTypeNames lists every type auth.type accepts, for errors: the
// built-in ones, those of this module's packages, and those registered.
func sourceTypeNames() string {
	names := slices.Collect(maps.Keys(builtinSourceTypes))
	for name := range moduleSourceTypes {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	sourceTypes.RLock()
	for name := range sourceTypes.m {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	sourceTypes.RUnlock()
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// TokenSource builds the source the config describes, uncached: nil, and no
// error, when Type is empty. A gcp type needs
// import _ "github.com/warmpool/warmpool/gcp" in the program, and an
// Audience; without one, use Option, or
// WithTokenSourceFor(func(aud string) TokenSource { return gcp.IDTokenSource(aud) }).
func (a AuthConfig) TokenSource() (TokenSource, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	switch a.Type {
	case "":
		return nil, nil
	case "file":
		return FileToken(a.Path), nil
	case "env":
		return EnvToken(a.Env), nil
	case "command":
		return &CommandSource{Argv: slices.Clone(a.Command), Timeout: a.Timeout}, nil
	case "static":
		return StaticToken(a.Token), nil
	}
	f := registeredSourceType(a.Type)
	if f == nil {
		allowed := "no such token source is registered" // validate let it through: one of the module's
		if pkg, ok := moduleSourceTypes[a.Type]; ok {
			allowed += `; add import _ "` + pkg + `" to the program`
		}
		return nil, &ConfigError{Key: authBlockKey + ".type", Value: a.Type, Allowed: allowed}
	}
	src, err := f(a)
	if err != nil {
		return nil, fmt.Errorf("warmpool: auth.type %s: %w", a.Type, err)
	}
	return src, nil
}
