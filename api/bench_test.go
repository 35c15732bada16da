package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/dgraph-io/badger/v4"

	"github.com/cairn-dev/cairn/domain/user"
	"github.com/cairn-dev/cairn/projections"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	healthv1 "github.com/cairn-dev/cairn/proto/grpc/health/v1"
	"github.com/cairn-dev/cairn/proto/grpc/health/v1/healthv1connect"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// benchServerEnv makes the test binary a benchmark server instead of
// running tests (TestMain): "public" serves grpc.health.v1 Check under its
// real rule, "session" under an AccountService signed-in rule.
const benchServerEnv = "CAIRN_API_BENCH_SERVER"

const benchAdminKey = "cak_bench_operator_key"

func TestMain(m *testing.M) {
	if mode := os.Getenv(benchServerEnv); mode != "" {
		if err := serveBench(mode); err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveBench runs a real node (embedded JetStream, Badger, projections,
// event log) behind a Server on loopback h2c, prints its URL and serves
// until stdin closes. Its own process, so that its CPU time is the
// server's alone.
func serveBench(mode string) error {
	switch mode {
	case "public":
	case "session":
		// Set before serving: rules is never written while requests run.
		rules[healthv1connect.HealthCheckProcedure] = rule{client: signedIn, mfaOK: true}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if path := os.Getenv(benchServerEnv + "_CPUPROFILE"); path != "" {
		// CAIRN_API_BENCH_SERVER_CPUPROFILE=f profiles each server to f.<mode>.
		f, err := os.Create(path + "." + mode)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, err := os.MkdirTemp("", "cairn-api-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := streams.StartEmbedded(ctx, streams.EmbeddedConfig{Dir: filepath.Join(dir, "nats"), Logger: quiet})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nc, err := ns.Connect()
	if err != nil {
		return err
	}
	defer func() { _ = nc.Drain() }()
	store, err := streams.Open(ctx, nc, streams.Options{Logger: quiet})
	if err != nil {
		return err
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithSyncWrites(false).WithLogger(nil))
	if err != nil {
		return err
	}
	defer db.Close()
	reads := projections.New(db, store, projections.Options{Logger: quiet})
	defer reads.Close()
	if err := reads.Start(ctx); err != nil {
		return err
	}
	h, err := New(Config{Log: eventlog.New(store, reads, eventlog.Options{Logger: quiet}), Reads: reads, Store: store,
		AdminKey: benchAdminKey, MasterKey: make([]byte, 32), Logger: quiet, NoAuthRateLimits: true, Connected: nc.IsConnected})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("listening http://%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// benchServer is a serveBench child process of the test binary.
type benchServer struct {
	client *connect.Client
	pid    int
}

func startBenchServer(b *testing.B, mode string) benchServer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		b.Fatalf("bench server did not start: %q %v", line, err)
	}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: p}}
	b.Cleanup(hc.CloseIdleConnections)
	return benchServer{client: connect.NewClient(connecthttp.NewTransport(hc, url)), pid: cmd.Process.Pid}
}

// cpu is the CPU time (user + system) the server process has used.
func (s benchServer) cpu(b *testing.B) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		b.Skipf("server CPU time needs /proc: %v", err)
	}
	// Fields after the parenthesised command: state is 3, utime 14, stime 15.
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		b.Fatalf("unexpected /proc stat: %q", stat)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// signedIn creates project "bench" with ann (one session) and bob
// (user.DefaultMaxSessions sessions) and returns a session token of each,
// bob's being his newest.
func (s benchServer) signedIn(b *testing.B) (ann, bob string) {
	b.Helper()
	ctx := context.Background()
	op, opInfo := connect.NewClientContext(ctx)
	opInfo.RequestHeader().Set("Authorization", "Bearer "+benchAdminKey)
	if _, err := cairnv1connect.NewProjectsServiceClient(s.client).CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: "bench", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	account := cairnv1connect.NewAccountServiceClient(s.client)
	g, gInfo := connect.NewClientContext(ctx)
	gInfo.RequestHeader().Set(headerProject, "bench")
	const pw = "correct horse battery staple"
	signIn := func(email string, times int) (token string) {
		if _, err := account.CreateAccount(g, &cairnv1.CreateAccountRequest{Email: email, Password: pw}); err != nil {
			b.Fatal(err)
		}
		for range times {
			res, err := account.CreateEmailPasswordSession(g, &cairnv1.CreateEmailPasswordSessionRequest{Email: email, Password: pw})
			if err != nil {
				b.Fatal(err)
			}
			token = res.GetSecret()
		}
		return token
	}
	return signIn("ann@example.com", 1), signIn("bob@example.com", user.DefaultMaxSessions)
}

// BenchmarkAuthOverhead measures what session validation adds to an RPC
// that does nothing else: grpc.health.v1 Check through the full
// interceptor chain of a real node in its own process, called over
// loopback h2c by the generated client from 4×GOMAXPROCS goroutines.
// "public" is Check under its real rule (no credential). "session" serves
// the same procedure under an AccountService signed-in rule and calls it
// with a session bearer token, so each call also parses and hashes the
// token, looks the project, the session index and the user up in Badger
// and checks the session; "session-max" is the same for a user holding
// user.DefaultMaxSessions sessions. Besides wall ns/op (client and server
// share the machine) each reports the server process's CPU time per call,
// and the session runs their overhead-% in server CPU per call (and in
// wall time, wall-overhead-%) over the "public" run just before them.
func BenchmarkAuthOverhead(b *testing.B) {
	public := startBenchServer(b, "public")
	session := startBenchServer(b, "session")
	ann, bob := session.signedIn(b)
	run := func(b *testing.B, s benchServer, token string) (wall, cpu float64) {
		health := healthv1connect.NewHealthClient(s.client)
		ctx := context.Background()
		b.SetParallelism(4)
		b.ReportAllocs()
		cpu0 := s.cpu(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, info := connect.NewClientContext(ctx)
				if token != "" {
					info.RequestHeader().Set("Authorization", "Bearer "+token)
				}
				res, err := health.Check(ctx, &healthv1.HealthCheckRequest{})
				if err != nil || res.GetStatus() != healthv1.HealthCheckResponse_SERVING {
					b.Errorf("Check: %v %v", res, err)
					return
				}
			}
		})
		b.StopTimer()
		wall = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		cpu = float64((s.cpu(b) - cpu0).Nanoseconds()) / float64(b.N)
		b.ReportMetric(1e9/wall, "calls/s")
		b.ReportMetric(cpu, "server-cpu-ns/op")
		return wall, cpu
	}
	var baseWall, baseCPU float64
	b.Run("public", func(b *testing.B) {
		baseWall, baseCPU = run(b, public, "")
	})
	for _, c := range []struct{ name, token string }{{"session", ann}, {"session-max", bob}} {
		b.Run(c.name, func(b *testing.B) {
			wall, cpu := run(b, session, c.token)
			if baseCPU > 0 {
				b.ReportMetric(100*(cpu-baseCPU)/baseCPU, "overhead-%")
				b.ReportMetric(100*(wall-baseWall)/baseWall, "wall-overhead-%")
			}
		})
	}
}
