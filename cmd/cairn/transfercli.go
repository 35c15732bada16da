package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-dev/cairn/api"
)

// The transfer commands (`cairn projects export|import|fork`) are plain
// HTTP routes of the operator (api/transfer.go), with progress on stderr
// when it is a terminal.

// transferFlags are the flags of export, import and fork.
type transferFlags struct {
	out, passFile, as, at  string
	keepKeys, keepSessions bool
}

func (t *transferFlags) query() url.Values {
	q := url.Values{}
	if t.keepKeys {
		q.Set("keep_keys", "true")
	}
	if t.keepSessions {
		q.Set("keep_sessions", "true")
	}
	return q
}

func (t *transferFlags) keep(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&t.keepKeys, "keep-keys", false, "keep the project's API keys (default: revoked)")
	cmd.Flags().BoolVar(&t.keepSessions, "keep-sessions", false, "keep end users' sessions (default: revoked)")
}

// passphrase reads --passphrase-file, else CAIRN_PASSPHRASE.
func (t *transferFlags) passphrase(getenv func(string) string) (string, error) {
	return passphraseFrom(t.passFile, getenv)
}

func exportCmd(e *cliEnv) *cobra.Command {
	var t transferFlags
	cmd := &cobra.Command{
		Use:   "export PROJECT",
		Short: "Write a project's whole history and files to an encrypted package (operator)",
		Example: `  CAIRN_PASSPHRASE=… cairn projects export acme -o acme.cairnpkg
  cairn projects export acme --passphrase-file pass.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pass, err := t.passphrase(e.getenv)
			if err != nil {
				return err
			}
			r, err := e.remote()
			if err != nil {
				return err
			}
			out := cmp.Or(t.out, args[0]+".cairnpkg")
			return r.export(cmd.Context(), args[0], out, pass, e.stdout, e.stderr)
		},
	}
	// Named output (-o) like the format flag it shadows: here it is the file.
	cmd.Flags().StringVarP(&t.out, "output", "o", "", "package file to write (default PROJECT.cairnpkg)")
	cmd.Flags().StringVar(&t.passFile, "passphrase-file", "", "file holding the package passphrase (default: $CAIRN_PASSPHRASE)")
	return cmd
}

func importCmd(e *cliEnv) *cobra.Command {
	var t transferFlags
	cmd := &cobra.Command{
		Use:     "import FILE",
		Short:   "Create a project from a package (operator)",
		Example: "  CAIRN_PASSPHRASE=… cairn projects import acme.cairnpkg --as acme-copy",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pass, err := t.passphrase(e.getenv)
			if err != nil {
				return err
			}
			r, err := e.remote()
			if err != nil {
				return err
			}
			q := t.query()
			if t.as != "" {
				q.Set("as", t.as)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("projects import: %w", err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			p := newProgress(e.stderr, "import: uploaded", st.Size())
			defer p.done()
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, r.url+"/v1/projects/import?"+q.Encode(), &countingReader{r: f, p: p})
			if err != nil {
				return err
			}
			req.ContentLength = st.Size()
			req.Header.Set(api.HeaderPassphrase, pass)
			return r.transferCall(req, e.stdout)
		},
	}
	cmd.Flags().StringVar(&t.passFile, "passphrase-file", "", "file holding the package passphrase (default: $CAIRN_PASSPHRASE)")
	cmd.Flags().StringVar(&t.as, "as", "", "the new project's id (default the package's)")
	t.keep(cmd)
	return cmd
}

func forkCmd(e *cliEnv) *cobra.Command {
	var t transferFlags
	cmd := &cobra.Command{
		Use:   "fork PROJECT --as NEW",
		Short: "Copy a project's history up to a point into a new project (operator)",
		Example: `  cairn projects fork acme --as acme-yesterday --at 2026-12-06T00:00:00Z
  cairn projects fork acme --as acme-1200 --at 1200`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if t.as == "" {
				return errors.New("projects fork: --as ID is required")
			}
			r, err := e.remote()
			if err != nil {
				return err
			}
			q := t.query()
			q.Set("as", t.as)
			if t.at != "" {
				q.Set("at", t.at)
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, r.url+"/v1/projects/"+url.PathEscape(args[0])+"/fork?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			return r.transferCall(req, e.stdout)
		},
	}
	cmd.Flags().StringVar(&t.as, "as", "", "the new project's id (required)")
	cmd.Flags().StringVar(&t.at, "at", "", "last sequence to copy, or an RFC 3339 time (default: now)")
	t.keep(cmd)
	return cmd
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
			err = fmt.Errorf("the server did not finish the package (%s)", cmp.Or(st, "no status"))
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

// progress prints how many bytes passed, a line a second rewritten in
// place, on a terminal only: logs and CI get none of it.
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
	return &progress{w: w, what: what, total: total, last: time.Now(), tty: isTerminal(w)}
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
