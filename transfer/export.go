package transfer

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Progress reports how far an export, import or fork got.
type Progress func(stage string, done, total int64)

// Export writes project p as a package to w while the instance keeps
// serving: the events up to the stream's last sequence when it starts (an
// ordered read), then every object of the project's object store. The
// object store keeps no history, so the project's objects are held
// (holdObjects) from before that sequence is read until the package is
// written: an object deleted after it is still there to copy.
func (in *Instance) Export(ctx context.Context, p *eventsv1.Project, w io.Writer, passphrase string, progress Progress) (Manifest, error) {
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	id := p.GetId()
	stream := streams.ProjectStream(id)
	release, err := in.holdObjects(ctx, id)
	if err != nil {
		return Manifest{}, err
	}
	defer release()
	info, err := in.Store.StreamInfo(ctx, stream)
	if err != nil {
		return Manifest{}, err
	}
	kdf, err := newKDF()
	if err != nil {
		return Manifest{}, err
	}
	k, err := deriveKeys(passphrase, kdf)
	if err != nil {
		return Manifest{}, err
	}
	check, err := k.seal("check", []byte(checkText))
	if err != nil {
		return Manifest{}, err
	}
	pj, err := protojson.Marshal(p)
	if err != nil {
		return Manifest{}, fmt.Errorf("transfer: encode project: %w", err)
	}
	now := in.Now().UTC()
	hdr := Header{Format: Format, Version: Version, Project: pj, ProjectID: id, LastSeq: info.LastSeq, ExportedAt: now, KDF: kdf, Check: check}
	hb, err := json.MarshalIndent(hdr, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	pw := &packageWriter{tw: tar.NewWriter(w), modTime: now}
	if err := pw.bytesEntry(headerName, hb); err != nil {
		return Manifest{}, err
	}
	m := Manifest{Format: Format, Version: Version, ProjectID: id, LastSeq: info.LastSeq}

	// Events: sealed secrets move from the master key to the passphrase.
	var chunk []byte
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		name := fmt.Sprintf("%s%06d", eventsPrefix, len(pw.entries))
		err := pw.bytesEntry(name, chunk)
		chunk = chunk[:0]
		progress("events", int64(m.Events), int64(info.LastSeq))
		return err
	}
	if info.LastSeq > 0 {
		for msg, err := range in.Store.Read(ctx, stream, streams.ReadOptions{StartSeq: 1}) {
			if err != nil {
				return m, err
			}
			if msg.Seq > info.LastSeq {
				break
			}
			rec, n, err := in.exportRecord(id, msg, k)
			if err != nil {
				return m, err
			}
			m.Secrets += n
			chunk = rec.append(chunk)
			m.Events++
			if msg.Seq == info.LastSeq {
				break
			}
			if len(chunk) >= chunkBytes {
				if err := flush(); err != nil {
					return m, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return m, err
	}
	if m.Events != info.LastSeq-info.FirstSeq+1 && info.LastSeq > 0 {
		return m, fmt.Errorf("transfer: read %d events of %s, expected %d", m.Events, stream, info.LastSeq-info.FirstSeq+1)
	}

	// Objects.
	if err := in.exportObjects(ctx, id, pw, &m, nil, progress); err != nil {
		return m, err
	}
	m.Entries = pw.entries
	m.MAC = m.mac(k.mac)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := pw.bytesEntry(manifestName, mb); err != nil {
		return m, err
	}
	if err := pw.tw.Close(); err != nil {
		return m, fmt.Errorf("transfer: finish package: %w", err)
	}
	return m, nil
}

// exportRecord turns a stored message into a package record, its secrets
// re-sealed under the passphrase.
func (in *Instance) exportRecord(project string, msg streams.StoredMsg, k *keys) (record, int, error) {
	rel, ok := strings.CutPrefix(msg.Subject, streams.ProjectPrefix(project))
	if !ok {
		return record{}, 0, fmt.Errorf("transfer: message %d has subject %q outside project %s", msg.Seq, msg.Subject, project)
	}
	rec := record{Seq: msg.Seq, Subject: rel, Header: msg.Header, Data: msg.Data}
	env, err := eventlog.Decode(msg.Data)
	if err != nil {
		return rec, 0, fmt.Errorf("transfer: message %d: %w", msg.Seq, err)
	}
	n := 0
	err = in.Secrets(env, func(p, purpose string, sealed []byte) ([]byte, error) {
		plain, err := in.Unseal(p, purpose, sealed)
		if err != nil {
			return nil, err
		}
		n++
		return k.seal(purpose, plain)
	})
	if err != nil {
		return rec, 0, fmt.Errorf("transfer: message %d: %w", msg.Seq, err)
	}
	if n > 0 {
		if rec.Data, err = eventlog.Encode(env); err != nil {
			return rec, 0, err
		}
	}
	return rec, n, nil
}

// exportObjects writes the project's objects (those refs names, when refs
// is set) as entries.
func (in *Instance) exportObjects(ctx context.Context, project string, pw *packageWriter, m *Manifest, refs *references, progress Progress) error {
	has, err := in.Store.HasObjectStore(ctx, project)
	if err != nil || !has {
		return err
	}
	obs, err := in.Store.ObjectStore(ctx, project)
	if err != nil {
		return err
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("transfer: list objects of %s: %w", project, err)
	}
	var total int64
	for _, o := range list {
		total += int64(o.Size)
	}
	for _, o := range list {
		if o.Deleted || (refs != nil && !refs.has(o.Name)) {
			continue
		}
		r, err := obs.Get(ctx, o.Name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return fmt.Errorf("transfer: get object %s: %w", o.Name, err)
		}
		oi, _ := r.Info()
		meta, _ := json.Marshal(objectMeta{Description: oi.Description, Headers: oi.Headers, Metadata: oi.Metadata})
		name := fmt.Sprintf("%s%06d", objectPrefix, len(pw.entries))
		err = pw.entry(name, int64(oi.Size), map[string]string{paxName: o.Name, paxMeta: string(meta)}, func(w io.Writer) error {
			_, err := io.Copy(w, r)
			return err
		})
		r.Close()
		if err != nil {
			return err
		}
		m.Objects++
		m.ObjectBytes += int64(oi.Size)
		progress("objects", m.ObjectBytes, total)
	}
	return nil
}
