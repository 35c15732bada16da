package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"connectrpc.com/connect/v2"
	"github.com/spf13/cobra"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// defaultURL is where a client command looks when nothing names a server.
const defaultURL = "http://localhost:8080"

// login is the file `cairn login` writes: one server and its credential.
type login struct {
	URL string `json:"url"`
	Key string `json:"key"`
}

// loginPath is <user config dir>/cairn/config.json. The directory follows
// os.UserConfigDir but reads the environment through getenv, so a test's
// environment decides it (and one without HOME has no login file).
func loginPath(getenv func(string) string) string {
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = getenv("AppData")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			dir = filepath.Join(h, "Library", "Application Support")
		}
	default:
		dir = getenv("XDG_CONFIG_HOME")
		if dir == "" && getenv("HOME") != "" {
			dir = filepath.Join(getenv("HOME"), ".config")
		}
	}
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "cairn", "config.json")
}

// readLogin reads the login file; a missing one is no login (why says so).
func readLogin(path string) (l login, why string, err error) {
	if path == "" {
		return login{}, "no user config directory (HOME unset)", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return login{}, path + " (no such file)", nil
	}
	if err != nil {
		return login{}, "", fmt.Errorf("login file: %w", err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return login{}, "", fmt.Errorf("login file %s: %w", path, err)
	}
	return l, path, nil
}

// target is the server a client command calls and the credential it sends.
type target struct {
	url, key, keyFrom string
}

// resolve finds the server and the credential. Each has one order, for
// every command, first found wins:
//
//	URL: --url, CAIRN_URL, the login file's, http://localhost:8080
//	key: --key, CAIRN_KEY, CAIRN_ADMIN_KEY, <data dir>/admin.key, the login file's
//
// where the data dir is --data-dir, CAIRN_DATA_DIR, else ./cairn_data. A
// login's key goes only to the login's server: it is never sent to
// another URL. The error names every place looked.
func (e *cliEnv) resolve() (target, error) {
	lpath := loginPath(e.getenv)
	l, lwhere, err := readLogin(lpath)
	if err != nil {
		return target{}, err
	}
	t := target{url: e.url}
	switch {
	case t.url != "":
	case e.getenv("CAIRN_URL") != "":
		t.url = e.getenv("CAIRN_URL")
	case l.URL != "":
		t.url = l.URL
	default:
		t.url = defaultURL
	}
	t.url = strings.TrimSuffix(t.url, "/")
	var looked []string
	for _, c := range []struct{ from, value string }{
		{"--key", e.key},
		{"CAIRN_KEY", e.getenv("CAIRN_KEY")},
		{"CAIRN_ADMIN_KEY", e.getenv("CAIRN_ADMIN_KEY")},
	} {
		if c.value != "" {
			t.key, t.keyFrom = strings.TrimSpace(c.value), c.from
			return t, nil
		}
		looked = append(looked, c.from+" (not set)")
	}
	dir := e.dataDir
	if dir == "" {
		dir = e.getenv("CAIRN_DATA_DIR")
	}
	if dir == "" {
		dir = "./cairn_data"
	}
	keyFile := filepath.Join(dir, "admin.key")
	b, err := os.ReadFile(keyFile)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		t.key, t.keyFrom = strings.TrimSpace(string(b)), keyFile
		return t, nil
	case err == nil:
		looked = append(looked, keyFile+" (empty)")
	case errors.Is(err, fs.ErrNotExist):
		looked = append(looked, keyFile+" (no such file)")
	default:
		looked = append(looked, fmt.Sprintf("%s (%v)", keyFile, err))
	}
	switch {
	case l.Key != "" && strings.TrimSuffix(l.URL, "/") == t.url:
		t.key, t.keyFrom = l.Key, lpath
		return t, nil
	case l.Key != "":
		looked = append(looked, fmt.Sprintf("%s (a login for %s, not %s)", lpath, l.URL, t.url))
	default:
		looked = append(looked, lwhere)
	}
	return target{}, fmt.Errorf("no credential for %s; looked in %s. Pass --key, set CAIRN_KEY, or run 'cairn login'",
		t.url, strings.Join(looked, ", "))
}

func loginCmd(e *cliEnv) *cobra.Command {
	var noVerify bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Remember a server and a credential for later commands",
		Long: `Writes the server URL and the credential to <user config dir>/cairn/config.json
(mode 0600), the last place client commands look for them. The key is read
from --key, else from the first line of standard input. It is only ever sent
to that URL, which is asked first whether it accepts the key.`,
		Example: `  cairn login --url https://cairn.example.com --key "$KEY"
  pass show cairn | cairn login --url https://cairn.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := login{URL: strings.TrimSuffix(e.url, "/"), Key: e.key}
			if l.URL == "" {
				l.URL = cmp.Or(e.getenv("CAIRN_URL"), defaultURL)
			}
			if l.Key == "" {
				b := make([]byte, 4096)
				n, _ := e.stdin.Read(b)
				l.Key, _, _ = strings.Cut(strings.TrimSpace(string(b[:n])), "\n")
				l.Key = strings.TrimSpace(l.Key)
			}
			if l.Key == "" {
				return errors.New("login: no key: pass --key or write it to standard input")
			}
			path := loginPath(e.getenv)
			if path == "" {
				return errors.New("login: no user config directory (set HOME or XDG_CONFIG_HOME)")
			}
			kind := "unchecked"
			if !noVerify {
				var err error
				if kind, err = checkCredential(cmd.Context(), l); err != nil {
					return fmt.Errorf("login: %w", err)
				}
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return fmt.Errorf("login: %w", err)
			}
			b, err := json.MarshalIndent(l, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
				return fmt.Errorf("login: %w", err)
			}
			fmt.Fprintf(e.stdout, "logged in to %s, %s credential (saved in %s)\n", l.URL, kind, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&e.url, "url", "", "server URL (default $CAIRN_URL, else http://localhost:8080)")
	cmd.Flags().StringVar(&e.key, "key", "", "the credential: an API key or the operator key (default: read from standard input)")
	cmd.Flags().BoolVar(&noVerify, "no-verify", false, "save without asking the server whether it accepts the credential")
	return cmd
}

func logoutCmd(e *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the server and credential 'cairn login' saved",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path := loginPath(e.getenv)
			if path == "" {
				return nil
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("logout: %w", err)
			}
			fmt.Fprintf(e.stdout, "logged out (removed %s)\n", path)
			return nil
		},
	}
}

// checkCredential asks l.URL whether it accepts l.Key: ListProjects answers
// an operator, refuses other valid credentials with permission_denied, and
// an unknown one with unauthenticated.
func checkCredential(ctx context.Context, l login) (kind string, err error) {
	e := &cliEnv{key: l.Key, url: l.URL, getenv: func(string) string { return "" }}
	r, err := e.remote()
	if err != nil {
		return "", err
	}
	_, err = cairnv1connect.NewProjectsServiceClient(r.client).ListProjects(r.ctx(ctx), &cairnv1.ListProjectsRequest{PageSize: 1})
	if err == nil {
		return "operator", nil
	}
	switch connect.CodeOf(err) {
	case connect.CodePermissionDenied:
		return "project", nil
	case connect.CodeUnauthenticated:
		return "", fmt.Errorf("%s refused the credential: %w", l.URL, err)
	}
	return "", fmt.Errorf("checking the credential with %s (--no-verify to save it anyway): %w", l.URL, err)
}
