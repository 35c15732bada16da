package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The floor (-floor) is the design card's own cost, with none of Cairn's
// work: an HTTP/1.1 server whose create appends the request's body as one
// event to a JetStream stream configured as Cairn's project streams are
// (file storage, embedded single node, fsync every second, a message id and
// a per-subject expected sequence on every append, as Cairn's creates
// send), waits for the acknowledgement, and answers once a projector
// reading the stream in order has written the event to Badger (Cairn's
// Badger settings, several events per transaction, a checkpoint in each):
// Cairn's write contract, a write answered once applied on this node. Its
// get reads one Badger key.
// Nothing is decoded, validated, authorised or indexed. What Cairn costs
// beyond it is Cairn's; what it costs against PocketBase bounds every
// server built this way on this machine.

const (
	floorStream        = "FLOOR"
	floorSubjectPrefix = "floor.d."
	floorBatch         = 256
)

// runFloor serves the floor until ctx ends: pbcompare floor --http addr --dir dir.
func runFloor(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("floor", flag.ExitOnError)
	addr := fl.String("http", "127.0.0.1:8090", "listen address")
	dir := fl.String("dir", "", "data directory")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("floor: --dir is required")
	}
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "floor", DontListen: true, JetStream: true, StoreDir: filepath.Join(*dir, "nats"),
		JetStreamMaxMemory: -1, JetStreamMaxStore: -1, NoSigs: true,
		SyncInterval: time.Second, MaxPayload: 8 << 20, // Cairn's embedded defaults
	})
	if err != nil {
		return err
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(30 * time.Second) {
		return errors.New("floor: nats-server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// As streams.Store.streamConfig makes a project's stream.
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: floorStream, Subjects: []string{"floor.>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		Replicas: 1, Duplicates: 2 * time.Minute, MaxMsgs: -1, MaxBytes: -1, Discard: jetstream.DiscardNew,
		AllowAtomicPublish: true, AllowDirect: true, DenyDelete: true, DenyPurge: true,
	})
	if err != nil {
		return fmt.Errorf("floor: create stream: %w", err)
	}
	// Cairn's Badger settings (cmd/cairn/memory.go, node.go).
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(*dir, "badger")).WithSyncWrites(false).WithLogger(nil).
		WithMemTableSize(16 << 20).WithNumMemtables(3).WithBlockCacheSize(32 << 20).WithIndexCacheSize(16 << 20).WithNumCompactors(2))
	if err != nil {
		return err
	}
	defer db.Close()

	f := &floor{nc: nc, db: db}
	projectorDone := make(chan error, 1)
	go func() { projectorDone <- f.project(ctx, stream) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("POST /create", f.create)
	mux.HandleFunc("GET /get", f.get)
	srv := &http.Server{Addr: *addr, Handler: mux}
	go func() {
		select {
		case <-ctx.Done():
		case err := <-projectorDone:
			log.Printf("floor: projector stopped: %v", err)
		}
		srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type floor struct {
	nc *nats.Conn
	db *badger.DB

	mu      sync.Mutex
	applied uint64
	waiters []floorWaiter
}

type floorWaiter struct {
	seq  uint64
	done chan struct{}
}

func (f *floor) create(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || id == "" {
		http.Error(w, "want ?id= and a body", http.StatusBadRequest)
		return
	}
	subject := floorSubjectPrefix + id
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{
		jetstream.MsgIDHeader:                   {id},
		jetstream.ExpectedStreamHeader:          {floorStream},
		jetstream.ExpectedLastSubjSeqHeader:     {"0"},
		jetstream.ExpectedLastSubjSeqSubjHeader: {subject},
	}}
	reply, err := f.nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var ack struct {
		Seq   uint64
		Error *struct{ Description string }
	}
	switch err := json.Unmarshal(reply.Data, &ack); {
	case err != nil || (ack.Error == nil && ack.Seq == 0):
		http.Error(w, fmt.Sprintf("append: an answer that is no acknowledgement: %s", reply.Data), http.StatusBadGateway)
		return
	case ack.Error != nil: // the expected sequence, a full stream…
		http.Error(w, "append: "+ack.Error.Description, http.StatusConflict)
		return
	}
	select {
	case <-f.wait(ack.Seq):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// wait is closed once the projector has applied seq.
func (f *floor) wait(seq uint64) <-chan struct{} {
	done := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied >= seq {
		close(done)
		return done
	}
	f.waiters = append(f.waiters, floorWaiter{seq, done})
	return done
}

func (f *floor) advance(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = seq
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.seq <= seq {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(f.waiters[len(kept):])
	f.waiters = kept
}

// project applies the stream in order, what has arrived (up to floorBatch
// events) in one Badger transaction with the checkpoint.
func (f *floor) project(ctx context.Context, stream jetstream.Stream) error {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(floorBatch))
	if err != nil {
		return err
	}
	defer it.Stop()
	msgs := make(chan jetstream.Msg, floorBatch)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var batch []jetstream.Msg
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return errors.New("the consumer ended")
			}
			batch = append(batch, m)
		}
	more:
		for len(batch) < floorBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break more
			}
		}
		var last uint64
		err := f.db.Update(func(txn *badger.Txn) error {
			for _, m := range batch {
				meta, err := m.Metadata()
				if err != nil {
					return err
				}
				last = meta.Sequence.Stream
				if err := txn.Set([]byte(m.Subject()), m.Data()); err != nil {
					return err
				}
			}
			return txn.Set([]byte("checkpoint"), strconv.AppendUint(nil, last, 10))
		})
		if err != nil {
			return err
		}
		f.advance(last)
	}
}

func (f *floor) get(w http.ResponseWriter, r *http.Request) {
	var val []byte
	err := f.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(floorSubjectPrefix + r.URL.Query().Get("id")))
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(val)
}
