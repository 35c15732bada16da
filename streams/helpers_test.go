package streams

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testEnv is a real embedded JetStream in t.TempDir() and a Store on it.
type testEnv struct {
	t     *testing.T
	dir   string
	emb   *Embedded
	store *Store
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	env := &testEnv{t: t, dir: t.TempDir()}
	env.start(EmbeddedConfig{})
	return env
}

func (e *testEnv) start(cfg EmbeddedConfig) {
	e.t.Helper()
	cfg.Dir, cfg.Logger = e.dir, quietLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := StartEmbedded(ctx, cfg)
	if err != nil {
		e.t.Fatalf("start embedded: %v", err)
	}
	nc, err := emb.Connect()
	if err != nil {
		emb.Shutdown()
		e.t.Fatalf("connect: %v", err)
	}
	st, err := Open(ctx, nc, Options{Logger: quietLogger(), ReadHeartbeat: 500 * time.Millisecond})
	if err != nil {
		nc.Close()
		emb.Shutdown()
		e.t.Fatalf("open store: %v", err)
	}
	e.emb, e.store = emb, st
	e.t.Cleanup(func() { e.stop() })
}

func (e *testEnv) stop() {
	if e.emb == nil {
		return
	}
	e.store.nc.Close()
	e.emb.Shutdown()
	e.emb, e.store = nil, nil
}

func (e *testEnv) restart() {
	e.t.Helper()
	e.stop()
	e.start(EmbeddedConfig{})
}

func (e *testEnv) project(id string, maxBytes int64) string {
	e.t.Helper()
	if err := e.store.EnsureProjectStream(context.Background(), id, Limits{MaxBytes: maxBytes}); err != nil {
		e.t.Fatalf("ensure project %s: %v", id, err)
	}
	return ProjectStream(id)
}

// mustAppend appends one message with an expectation.
func (e *testEnv) mustAppend(stream, filter string, expect uint64, subject, id, data string) Ack {
	e.t.Helper()
	ack, err := e.store.Append(context.Background(), Append{
		Stream: stream, ExpectFilter: filter, ExpectSeq: expect,
		Msgs: []Msg{{Subject: subject, Data: []byte(data), MsgID: id}},
	})
	if err != nil {
		e.t.Fatalf("append %s: %v", subject, err)
	}
	return ack
}

// fill appends n unconditional messages on subjects cycling over k keys.
func (e *testEnv) fill(project string, n, k int) {
	e.t.Helper()
	for i := range n {
		subj := ProjectSubject(project, "keys", fmt.Sprintf("K%d", i%k), "update")
		if _, err := e.store.Append(context.Background(), Append{
			Stream: ProjectStream(project),
			Msgs:   []Msg{{Subject: subj, Data: []byte(fmt.Sprint(i)), MsgID: fmt.Sprintf("fill-%d", i)}},
		}); err != nil {
			e.t.Fatalf("fill %d: %v", i, err)
		}
	}
}
