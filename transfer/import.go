package transfer

import (
	"archive/tar"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// ImportOptions say how to import a package.
type ImportOptions struct {
	Passphrase string
	// As is the new project's id; empty keeps the source's.
	As string
	Policy
	Progress Progress
}

// maxMetaBytes bounds the JSON entries (header, manifest) read into memory.
const maxMetaBytes = 64 << 20

// pkgReader walks a package's entries in order, checking each against
// what the manifest will say.
type pkgReader struct {
	tr      *tar.Reader
	keys    *keys
	hdr     Header
	project *eventsv1.Project
	entries []Entry
}

// visitor gets a package's contents; nil fields skip that kind.
type visitor struct {
	event  func(pr *pkgReader, rec record) error
	object func(name string, meta objectMeta, r io.Reader) error
}

// readPackage reads the whole package, calling v, and checks the
// manifest at its end. Any error means the package must not be used.
func readPackage(r io.Reader, passphrase string, v visitor) (*pkgReader, Manifest, error) {
	pr := &pkgReader{tr: tar.NewReader(r)}
	next := func() (*tar.Header, error) {
		h, err := pr.tr.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, bad("package is truncated (it ends before its manifest)")
		}
		if err != nil {
			return nil, bad("not a readable package: %v", err)
		}
		return h, nil
	}
	h, err := next()
	if err != nil {
		return nil, Manifest{}, err
	}
	if h.Name != headerName {
		return nil, Manifest{}, bad("first entry is %q, not %s: not a Cairn package", h.Name, headerName)
	}
	hb, err := pr.read(h)
	if err != nil {
		return nil, Manifest{}, err
	}
	if err := json.Unmarshal(hb, &pr.hdr); err != nil {
		return nil, Manifest{}, bad("header: %v", err)
	}
	if pr.hdr.Format != Format {
		return nil, Manifest{}, bad("format %q is not %s", pr.hdr.Format, Format)
	}
	if pr.hdr.Version != Version {
		return nil, Manifest{}, bad("package format version %d; this Cairn reads version %d only", pr.hdr.Version, Version)
	}
	pr.project = &eventsv1.Project{}
	if err := protojson.Unmarshal(pr.hdr.Project, pr.project); err != nil {
		return nil, Manifest{}, bad("header project: %v", err)
	}
	if pr.keys, err = deriveKeys(passphrase, pr.hdr.KDF); err != nil {
		return nil, Manifest{}, err
	}
	if plain, err := pr.keys.open("check", pr.hdr.Check); err != nil || string(plain) != checkText {
		return nil, Manifest{}, fmt.Errorf("%w: it does not open this package", ErrPassphrase)
	}
	var events uint64
	var lastSeq uint64
	for {
		h, err := next()
		if err != nil {
			return nil, Manifest{}, err
		}
		switch {
		case h.Name == manifestName:
			mb, err := pr.read(h)
			if err != nil {
				return nil, Manifest{}, err
			}
			var m Manifest
			if err := json.Unmarshal(mb, &m); err != nil {
				return nil, Manifest{}, bad("manifest: %v", err)
			}
			if !hmac.Equal(m.MAC, m.mac(pr.keys.mac)) {
				return nil, Manifest{}, bad("manifest does not match its MAC: the package was changed after export")
			}
			if err := pr.checkManifest(m, events, lastSeq); err != nil {
				return nil, Manifest{}, err
			}
			return pr, m, nil
		case strings.HasPrefix(h.Name, eventsPrefix):
			b, err := pr.read(h)
			if err != nil {
				return nil, Manifest{}, err
			}
			rr := recordReader{b: b}
			for {
				rec, ok, err := rr.next()
				if err != nil {
					return nil, Manifest{}, err
				}
				if !ok {
					break
				}
				if rec.Seq != lastSeq+1 {
					return nil, Manifest{}, bad("event sequence %d follows %d", rec.Seq, lastSeq)
				}
				lastSeq = rec.Seq
				events++
				if v.event != nil {
					if err := v.event(pr, rec); err != nil {
						return nil, Manifest{}, err
					}
				}
			}
		case strings.HasPrefix(h.Name, objectPrefix):
			name := h.PAXRecords[paxName]
			if name == "" {
				return nil, Manifest{}, bad("object entry %s has no name", h.Name)
			}
			var meta objectMeta
			if err := json.Unmarshal([]byte(h.PAXRecords[paxMeta]), &meta); err != nil {
				return nil, Manifest{}, bad("object %s metadata: %v", name, err)
			}
			hw := &hashWriter{w: io.Discard, h: sha256.New()}
			body := io.TeeReader(pr.tr, hw)
			if v.object != nil {
				err = v.object(name, meta, body)
			} else {
				_, err = io.Copy(io.Discard, body)
			}
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, Manifest{}, bad("package is truncated (in object %s)", name)
				}
				return nil, Manifest{}, err
			}
			if hw.n != h.Size {
				return nil, Manifest{}, bad("package is truncated (object %s has %d of %d bytes)", name, hw.n, h.Size)
			}
			pr.entries = append(pr.entries, Entry{Name: h.Name, Size: h.Size, SHA256: hex.EncodeToString(hw.h.Sum(nil))})
		default:
			return nil, Manifest{}, bad("unexpected entry %q", h.Name)
		}
	}
}

// read reads a whole (bounded) entry and records its checksum.
func (pr *pkgReader) read(h *tar.Header) ([]byte, error) {
	if h.Size > maxMetaBytes {
		return nil, bad("entry %s is %d bytes", h.Name, h.Size)
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(pr.tr, b); err != nil {
		return nil, bad("package is truncated (in %s)", h.Name)
	}
	if h.Name != manifestName {
		sum := sha256.Sum256(b)
		pr.entries = append(pr.entries, Entry{Name: h.Name, Size: h.Size, SHA256: hex.EncodeToString(sum[:])})
	}
	return b, nil
}

func (pr *pkgReader) checkManifest(m Manifest, events, lastSeq uint64) error {
	if m.Format != Format || m.Version != Version || m.ProjectID != pr.hdr.ProjectID {
		return bad("manifest (%s v%d, project %s) does not match the header", m.Format, m.Version, m.ProjectID)
	}
	if len(m.Entries) != len(pr.entries) {
		return bad("manifest lists %d entries, the package has %d", len(m.Entries), len(pr.entries))
	}
	for i, e := range m.Entries {
		if e != pr.entries[i] {
			return bad("checksum mismatch in %s: the package is corrupt or was changed", e.Name)
		}
	}
	if m.Events != events || m.LastSeq != lastSeq || m.LastSeq != pr.hdr.LastSeq {
		return bad("manifest counts %d events up to %d, the package has %d up to %d", m.Events, m.LastSeq, events, lastSeq)
	}
	return nil
}

// Import reads the package in f twice: first to verify all of it
// (checksums, MAC, passphrase, every secret, the events' encoding), then to
// write it under the new id. Nothing is written unless the first pass
// succeeds, and a failure in the second removes what it wrote.
func (in *Instance) Import(ctx context.Context, f io.ReadSeeker, opts ImportOptions) (Result, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	pr, m, err := readPackage(f, opts.Passphrase, visitor{event: in.verifyEvent})
	if err != nil {
		return Result{}, err
	}
	progress("verified", int64(m.Events), int64(m.Events))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("transfer: rewind package: %w", err)
	}
	p := proto.CloneOf(pr.project)
	if opts.As != "" {
		p.Id = opts.As
	}
	s, err := in.newSink(ctx, pr.hdr.ProjectID, p, opts.Policy)
	if err != nil {
		if s != nil {
			s.abort()
		}
		return Result{}, err
	}
	res, err := func() (Result, error) {
		open := func(_, purpose string, sealed []byte) ([]byte, error) { return pr.keys.open(purpose, sealed) }
		second := visitor{
			event: func(_ *pkgReader, rec record) error {
				if err := s.event(ctx, rec, open); err != nil {
					return err
				}
				if s.res.Events%10000 == 0 {
					progress("events", int64(s.res.Events), int64(m.Events))
				}
				return nil
			},
			object: func(name string, meta objectMeta, r io.Reader) error {
				if err := s.putObject(ctx, name, meta, r); err != nil {
					return err
				}
				progress("objects", s.res.ObjectBytes, m.ObjectBytes)
				return nil
			},
		}
		if _, _, err := readPackage(f, opts.Passphrase, second); err != nil {
			return s.res, err
		}
		return s.finish(ctx)
	}()
	if err != nil {
		s.abort()
		return Result{}, err
	}
	return res, nil
}

// verifyEvent checks that an event decodes and its secrets open.
func (in *Instance) verifyEvent(pr *pkgReader, rec record) error {
	env, err := eventlog.Decode(rec.Data)
	if err != nil {
		return bad("event %d: %v", rec.Seq, err)
	}
	err = in.Secrets(env, func(_, purpose string, sealed []byte) ([]byte, error) {
		if _, err := pr.keys.open(purpose, sealed); err != nil {
			return nil, err
		}
		return sealed, nil
	})
	if err != nil {
		return fmt.Errorf("event %d: %w", rec.Seq, err)
	}
	return nil
}

// Inspect verifies a package without writing anything (import's first
// pass) and returns its header and manifest.
func (in *Instance) Inspect(r io.Reader, passphrase string) (Header, Manifest, error) {
	pr, m, err := readPackage(r, passphrase, visitor{event: in.verifyEvent})
	if err != nil {
		return Header{}, Manifest{}, err
	}
	return pr.hdr, m, nil
}
