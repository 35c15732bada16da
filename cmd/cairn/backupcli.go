package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/api"
	"github.com/cairn-dev/cairn/backup"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/transfer"
)

// backupCmd is `cairn backup -o DIR`: a copy of the whole instance while it
// serves, over the operator's HTTP routes (api/backup.go).
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "directory to write the backup to (must not exist or be empty)")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase that seals the master key in the backup (default: $CAIRN_PASSPHRASE)")
	r, err := dial(fs, args, stdout, getenv, true)
	if err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("backup: want -o DIR and no other argument")
	}
	pass, err := passphraseFrom(*passFile, getenv)
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := backup.Write(ctx, httpSource{r}, *out, pass, time.Now, func(stream string, done, total int) {
		fmt.Fprintf(stderr, "backup: %d of %d streams (%s)\n", done, total, stream)
	})
	if err != nil {
		return err
	}
	var bytes int64
	var msgs uint64
	for _, s := range m.Streams {
		bytes += s.Size
		msgs += s.State.Msgs
	}
	fmt.Fprintf(stdout, "backed up %d streams (%d messages, %d bytes of snapshots) to %s in %s; cut-off %s\n",
		len(m.Streams), msgs, bytes, *out, time.Since(start).Round(time.Millisecond), m.Cutoff.Format(time.RFC3339Nano))
	return nil
}

// restoreCmd is `cairn restore DIR [--data-dir D]`, server stopped: the
// backup's streams into the embedded NATS of an empty data directory, and
// its master key into D/master.key.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", envOr(getenv, "CAIRN_DATA_DIR", "./cairn_data"), "empty data directory to restore into (CAIRN_DATA_DIR)")
	passFile := fs.String("passphrase-file", "", "file holding the backup's passphrase (default: $CAIRN_PASSPHRASE)")
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if dir == "" {
		var err error
		if dir, err = positional(fs, "backup directory"); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return fmt.Errorf("restore: unexpected arguments %q", fs.Args())
	}
	pass, err := passphraseFrom(*passFile, getenv)
	if err != nil {
		return err
	}
	// Everything is checked before anything is written.
	if _, err := backup.Read(dir); err != nil {
		return err
	}
	keys, err := backup.OpenKeys(dir, pass)
	if err != nil {
		return err
	}
	for _, sub := range []string{"nats", "badger", "master.key"} {
		if _, err := os.Stat(filepath.Join(*dataDir, sub)); err == nil {
			return fmt.Errorf("restore: %s already has %s: restore into an empty data directory", *dataDir, sub)
		}
	}
	logger, err := newLogger(stderr, "warn", "text")
	if err != nil {
		return err
	}
	emb, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: filepath.Join(*dataDir, "nats"), Logger: logger})
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := streams.Open(ctx, nc, streams.Options{Logger: logger})
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := backup.Restore(ctx, store, dir, func(stream string, done, total int) {
		fmt.Fprintf(stderr, "restore: %d of %d streams (%s)\n", done, total, stream)
	})
	if err != nil {
		return err
	}
	if _, err := hex.DecodeString(keys.MasterKey); err != nil || len(keys.MasterKey) != 64 {
		return errors.New("restore: the backup's master key is not 64 hex characters")
	}
	if err := os.WriteFile(filepath.Join(*dataDir, "master.key"), []byte(keys.MasterKey+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %d streams into %s in %s (backup cut-off %s); start it with cairn serve --data-dir %s (read models are rebuilt; set --admin-key or let it generate one)\n",
		len(m.Streams), *dataDir, time.Since(start).Round(time.Millisecond), m.Cutoff.Format(time.RFC3339Nano), *dataDir)
	return nil
}

// passphraseFrom reads the passphrase from file, else CAIRN_PASSPHRASE.
func passphraseFrom(file string, getenv func(string) string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
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

// httpSource is backup.Source over a serving instance's backup routes.
type httpSource struct{ r *remote }

func (h httpSource) get(ctx context.Context, path string, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.r.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.r.token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.r.http.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		if res.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/v1/backup/streams/") {
			return nil, fmt.Errorf("%w: %w", streams.ErrNoStream, httpError(res))
		}
		return nil, httpError(res)
	}
	return res, nil
}

func (h httpSource) StreamNames(ctx context.Context) ([]string, error) {
	res, err := h.get(ctx, "/v1/backup/streams", nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out struct {
		Streams []string `json:"streams"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("stream list: %w", err)
	}
	return out.Streams, nil
}

func (h httpSource) Snapshot(ctx context.Context, stream string, w io.Writer) (streams.SnapshotInfo, error) {
	var info streams.SnapshotInfo
	res, err := h.get(ctx, "/v1/backup/streams/"+url.PathEscape(stream), nil)
	if err != nil {
		return info, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(w, res.Body); err != nil {
		return info, err
	}
	if st := res.Trailer.Get(api.TrailerBackupStatus); st != "ok" {
		return info, fmt.Errorf("the server did not finish the snapshot (%s)", cmp.Or(st, "no status"))
	}
	b, err := base64.StdEncoding.DecodeString(res.Trailer.Get(api.TrailerSnapshotInfo))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil {
		return info, fmt.Errorf("snapshot info: %w", err)
	}
	return info, nil
}

func (h httpSource) SealedKeys(ctx context.Context, passphrase string) (transfer.SealedSecret, error) {
	var out transfer.SealedSecret
	res, err := h.get(ctx, "/v1/backup/keys", map[string]string{api.HeaderPassphrase: passphrase})
	if err != nil {
		return out, err
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("keys: %w", err)
	}
	return out, nil
}
