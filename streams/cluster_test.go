package streams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startCluster runs three clustered nats-servers with JetStream in this
// process, on loopback ports, and returns their client URLs.
func startCluster(t *testing.T) []string {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var urls []string
	var srvs []*server.Server
	for i := range 3 {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "streams-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(srv.Shutdown)
		srvs = append(srvs, srv)
		urls = append(urls, srv.ClientURL())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, srv := range srvs {
		for !srv.JetStreamIsCurrent() || !anyLeader(srvs) {
			if time.Now().After(deadline) {
				t.Fatal("the cluster elected no JetStream meta leader")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return urls
}

func anyLeader(srvs []*server.Server) bool {
	for _, s := range srvs {
		if s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// TestClusterReadsAfterWrite: in a three-node cluster, with the writer
// connected to a node that hosts a follower of the stream, Last and Get see
// every acknowledged append at once, headers included. A direct get may be
// answered by a follower that has not applied the append yet (the quorum is
// the leader and one follower): in CI under load an upload then refused its
// next chunk ("has received 3145728 bytes"). In-process the followers keep
// up, so this checks the leader's answer rather than forcing the lag.
func TestClusterReadsAfterWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	urls := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st *Store
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		nc, err := nats.Connect(urls[0])
		if err != nil {
			t.Fatal(err)
		}
		st, err = Open(ctx, nc, Options{Logger: quietLogger(), Replicas: 3})
		if err == nil {
			t.Cleanup(nc.Close)
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("open store on the cluster: %v", err)
		}
	}
	if err := st.EnsureProjectStream(ctx, "p1", Limits{}); err != nil {
		t.Fatal(err)
	}
	stream := ProjectStream("p1")
	// Read and write through a node that hosts a follower: a direct get is
	// answered by the nearest replica.
	info, err := st.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	for i, u := range urls {
		if fmt.Sprintf("n%d", i+1) == leader {
			continue
		}
		nc, err := nats.Connect(u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if st, err = Open(ctx, nc, Options{Logger: quietLogger(), Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		break
	}
	filter := ProjectSubject("p1", "files", "b", "f1", ">")
	var last uint64
	conflicts := 0
	for i := range 300 {
		var ack Ack
		var err error
		for try := 0; ; try++ {
			ack, err = st.Append(ctx, Append{
				Stream: stream, ExpectFilter: filter, ExpectSeq: last,
				Msgs: []Msg{{Subject: ProjectSubject("p1", "files", "b", "f1", "chunk"), Data: []byte(fmt.Sprint(i)), MsgID: fmt.Sprint("m", i)}},
			})
			if !errors.Is(err, ErrConflict) || try == 5 {
				break
			}
			// The contract: reload and decide again. Under load a leader
			// change can refuse an expectation its predecessor would
			// have met; nobody else writes here, so the reload must still
			// show the previous append.
			conflicts++
			m, found, lerr := st.Last(ctx, stream, filter)
			if lerr != nil || (last > 0 && (!found || m.Seq != last)) {
				t.Fatalf("append %d refused as stale; the last message is seq %d (found=%v, err=%v), want %d", i, m.Seq, found, lerr, last)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		msg, found, err := st.Last(ctx, stream, filter)
		if err != nil || !found || msg.Seq != ack.Seq || string(msg.Data) != fmt.Sprint(i) {
			t.Fatalf("append %d acknowledged at seq %d; Last = seq %d %q found=%v err=%v", i, ack.Seq, msg.Seq, msg.Data, found, err)
		}
		if msg.MsgID() != fmt.Sprint("m", i) {
			t.Fatalf("Last lost the message's headers: %v", msg.Header)
		}
		got, err := st.Get(ctx, stream, ack.Seq)
		if err != nil || got.Seq != ack.Seq {
			t.Fatalf("Get(%d) right after its append: %v %v", ack.Seq, got.Seq, err)
		}
		last = ack.Seq
	}
	if conflicts > 0 {
		t.Logf("%d appends were refused as stale and retried", conflicts)
	}
	if _, err := st.Get(ctx, stream, last+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get past the end: %v, want ErrNotFound", err)
	}
	if _, found, err := st.Last(ctx, stream, ProjectSubject("p1", "files", "b", "other", ">")); found || err != nil {
		t.Fatalf("Last on a subject without messages: found=%v err=%v", found, err)
	}
	if _, _, err := st.Last(ctx, ProjectStream("nope"), ProjectSubject("nope", ">")); !errors.Is(err, ErrNoStream) {
		t.Fatalf("Last on a missing stream: %v, want ErrNoStream", err)
	}
}
