package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/api"
)

// transferCmd is `cairn projects export|import|fork`: plain HTTP routes of
// the operator (api/transfer.go), with progress on stderr.
func transferCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("projects "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "export: package file to write (default <project>.cairnpkg)")
	passFile := fs.String("passphrase-file", "", "file holding the package passphrase (default: $CAIRN_PASSPHRASE)")
	as := fs.String("as", "", "import: the new project's id (default the package's); fork: required")
	at := fs.String("at", "", "fork: last sequence to copy, or an RFC 3339 time (default: now)")
	keepKeys := fs.Bool("keep-keys", false, "import/fork: keep the project's API keys (default: revoked)")
	keepSessions := fs.Bool("keep-sessions", false, "import/fork: keep end users' sessions (default: revoked)")
	// The positional argument may come first ("export P -o f"), which the
	// flag package would otherwise take as the end of the flags.
	var pos string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = rest[0], rest[1:]
	}
	r, err := dial(fs, rest, stdout, getenv, true)
	if err != nil {
		return err
	}
	if pos == "" {
		what := map[string]string{"export": "project id", "import": "package file", "fork": "project id"}[sub]
		if pos, err = positional(fs, what); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return fmt.Errorf("projects %s: unexpected arguments %q", sub, fs.Args())
	}
	passphrase := func() (string, error) {
		if *passFile != "" {
			b, err := os.ReadFile(*passFile)
			if err != nil {
				return "", fmt.Errorf("passphrase: %w", err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if p := getenv("CAIRN_PASSPHRASE"); p != "" {
			return p, nil
		}
		return "", errors.New("a passphrase is required: --passphrase-file FILE or CAIRN_PASSPHRASE")
	}
	q := url.Values{}
	if *keepKeys {
		q.Set("keep_keys", "true")
	}
	if *keepSessions {
		q.Set("keep_sessions", "true")
	}
	switch sub {
	case "export":
		pass, err := passphrase()
		if err != nil {
			return err
		}
		if *out == "" {
			*out = pos + ".cairnpkg"
		}
		return r.export(ctx, pos, *out, pass, stdout, stderr)
	case "import":
		pass, err := passphrase()
		if err != nil {
			return err
		}
		if *as != "" {
			q.Set("as", *as)
		}
		f, err := os.Open(pos)
		if err != nil {
			return fmt.Errorf("projects import: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		p := newProgress(stderr, "import: uploaded", st.Size())
		defer p.done()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/v1/projects/import?"+q.Encode(), &countingReader{r: f, p: p})
		if err != nil {
			return err
		}
		req.ContentLength = st.Size()
		req.Header.Set(api.HeaderPassphrase, pass)
		return r.transferCall(req, stdout)
	default: // fork
		if *as == "" {
			return errors.New("projects fork: --as ID is required")
		}
		q.Set("as", *as)
		if *at != "" {
			q.Set("at", *at)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/v1/projects/"+url.PathEscape(pos)+"/fork?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		return r.transferCall(req, stdout)
	}
}

// transferCall sends req and prints its JSON answer.
func (r *remote) transferCall(req *http.Request, stdout io.Writer) error {
	req.Header.Set("Authorization", "Bearer "+r.token)
	res, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return httpError(res)
	}
	_, err = io.Copy(stdout, res.Body)
	return err
}

// httpError is the error a transfer route answered with.
func httpError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return fmt.Errorf("%s: %s", res.Status, e.Error)
	}
	return fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(b)))
}

// export streams the package into out+".part" and renames it once the
// server's trailer says the package is complete.
func (r *remote) export(ctx context.Context, project, out, pass string, stdout, stderr io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v1/projects/"+url.PathEscape(project)+"/export", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set(api.HeaderPassphrase, pass)
	res, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("projects export %s: %w", project, httpError(res))
	}
	tmp := out + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	p := newProgress(stderr, "export: received", 0)
	n, err := io.Copy(io.MultiWriter(f, p), res.Body)
	p.done()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if st := res.Trailer.Get(api.TrailerExportStatus); st != "ok" {
			err = fmt.Errorf("the server did not finish the package (%s)", cmpOr(st, "no status"))
		}
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("projects export %s: %w", project, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported project %s to %s (%d bytes)\n", project, out, n)
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// progress prints how many bytes passed: a line a second, rewritten in
// place on a terminal, plain lines otherwise (logs, CI).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	total int64
	n     int64
	last  time.Time
	tty   bool
}

func newProgress(w io.Writer, what string, total int64) *progress {
	p := &progress{w: w, what: what, total: total, last: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.add(int64(len(b)))
	return len(b), nil
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		p.print(false)
	}
}

func (p *progress) print(final bool) {
	line := fmt.Sprintf("%s %.1f MiB", p.what, float64(p.n)/(1<<20))
	if p.total > 0 {
		line += fmt.Sprintf(" of %.1f MiB", float64(p.total)/(1<<20))
	}
	switch {
	case p.tty && final:
		fmt.Fprintf(p.w, "\r%s\n", line)
	case p.tty:
		fmt.Fprintf(p.w, "\r%s", line)
	default:
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print(true)
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}
