package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// JetStream's snapshot and restore API (nats.go's jetstream package has no
// call for it): a snapshot is the stream's files as the server stores them
// (messages, deleted ranges, durable consumers with their positions),
// taken at one point in time and streamed in chunks that the reader acks
// for flow control; a restore sends the same chunks back into a server
// where the stream does not exist.
const (
	apiSnapshot = "$JS.API.STREAM.SNAPSHOT."
	apiRestore  = "$JS.API.STREAM.RESTORE."
	// restoreChunk is the size of one restore message (NATS max payload is
	// at least 1 MiB; CheckMaxPayload makes sure).
	restoreChunk = 256 << 10
)

// SnapshotInfo is what the server says of a snapshot when it starts: the
// stream's configuration and its state (sequences, counts) at the moment
// of the snapshot, as JetStream JSON.
type SnapshotInfo struct {
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

// SnapshotState is the part of a snapshot's state a backup reports.
type SnapshotState struct {
	Msgs     uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// Parsed returns the sequences and counts of the snapshot's state.
func (i SnapshotInfo) Parsed() (SnapshotState, error) {
	var st SnapshotState
	if err := json.Unmarshal(i.State, &st); err != nil {
		return st, fmt.Errorf("streams: snapshot state: %w", err)
	}
	return st, nil
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

// StreamNames lists every stream of the account, Cairn's and NATS's own
// (key-value and object store buckets, jobs), in the server's order.
func (s *Store) StreamNames(ctx context.Context) ([]string, error) {
	var out []string
	names := s.js.StreamNames(ctx)
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("streams: list streams: %w", err)
	}
	return out, nil
}

// Snapshot writes a snapshot of stream to w while the stream keeps taking
// writes: what it holds is the stream as it was when the snapshot began
// (info.State says up to which sequence).
func (s *Store) Snapshot(ctx context.Context, stream string, w io.Writer) (SnapshotInfo, error) {
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("streams: snapshot %s: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The server's flow-control window bounds what is in flight; never
	// drop a chunk as a slow consumer.
	_ = sub.SetPendingLimits(-1, -1)
	req, _ := json.Marshal(map[string]any{"deliver_subject": inbox})
	msg, err := s.nc.RequestWithContext(ctx, apiSnapshot+stream, req)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("streams: snapshot %s: %w", stream, err)
	}
	var res struct {
		Error *apiError `json:"error"`
		SnapshotInfo
	}
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return SnapshotInfo{}, fmt.Errorf("streams: snapshot %s: answer: %w", stream, err)
	}
	if res.Error != nil {
		if res.Error.Code == 404 {
			return SnapshotInfo{}, fmt.Errorf("stream %s: %w", stream, ErrNoStream)
		}
		return SnapshotInfo{}, fmt.Errorf("streams: snapshot %s: %w", stream, res.Error)
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return res.SnapshotInfo, fmt.Errorf("streams: snapshot %s: %w", stream, err)
		}
		if len(m.Data) == 0 {
			// The end: a status 204 (or none) when complete, else why not.
			if st := m.Header.Get("Status"); st != "" && st != "204" {
				return res.SnapshotInfo, fmt.Errorf("streams: snapshot %s failed: %s %s", stream, st, m.Header.Get("Description"))
			}
			return res.SnapshotInfo, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return res.SnapshotInfo, fmt.Errorf("streams: snapshot %s: %w", stream, err)
		}
		if m.Reply != "" {
			if err := m.Respond(nil); err != nil {
				return res.SnapshotInfo, fmt.Errorf("streams: snapshot %s: ack: %w", stream, err)
			}
		}
	}
}

// Restore creates stream from a snapshot read from r, as Snapshot wrote it
// with info. The stream must not exist.
func (s *Store) Restore(ctx context.Context, stream string, info SnapshotInfo, r io.Reader) error {
	req, err := json.Marshal(info)
	if err != nil {
		return err
	}
	msg, err := s.nc.RequestWithContext(ctx, apiRestore+stream, req)
	if err != nil {
		return fmt.Errorf("streams: restore %s: %w", stream, err)
	}
	var res struct {
		Error          *apiError `json:"error"`
		DeliverSubject string    `json:"deliver_subject"`
	}
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return fmt.Errorf("streams: restore %s: answer: %w", stream, err)
	}
	if res.Error != nil {
		return fmt.Errorf("streams: restore %s: %w", stream, res.Error)
	}
	buf := make([]byte, restoreChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			ack, err := s.nc.RequestWithContext(ctx, res.DeliverSubject, buf[:n])
			if err != nil {
				return fmt.Errorf("streams: restore %s: send: %w", stream, err)
			}
			if len(ack.Data) > 0 {
				var e struct {
					Error *apiError `json:"error"`
				}
				if json.Unmarshal(ack.Data, &e) == nil && e.Error != nil {
					return fmt.Errorf("streams: restore %s: %w", stream, e.Error)
				}
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("streams: restore %s: read: %w", stream, rerr)
		}
	}
	// An empty message ends the upload; the answer comes once the server
	// has rebuilt the stream from it, which takes a while for a big one.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	done, err := s.nc.RequestWithContext(fctx, res.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("streams: restore %s: finish: %w", stream, err)
	}
	var fin struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(done.Data, &fin); err != nil {
		return fmt.Errorf("streams: restore %s: answer: %w", stream, err)
	}
	if fin.Error != nil {
		return fmt.Errorf("streams: restore %s: %w", stream, fin.Error)
	}
	return nil
}
