package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// natsTestCerts are PEM files made for one test: a CA, the servers'
// certificate (CN=nats-route, for 127.0.0.1, used on client and route
// ports, as make-certs.sh makes it) and Cairn's client certificate.
type natsTestCerts struct {
	ca, server, serverKey, client, clientKey string
}

func makeNATSTestCerts(t *testing.T, dir string) natsTestCerts {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	serial := int64(1)
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "Cairn NATS test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage []x509.ExtKeyUsage, ips []net.IP, dns []string) ([]byte, *ecdsa.PrivateKey) {
		serial++
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: usage, IPAddresses: ips, DNSNames: dns}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	var c natsTestCerts
	c.ca = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := leaf("nats-route", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		[]net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	c.server, c.serverKey = write("server.pem", "CERTIFICATE", srvDER), writeKey("server-key.pem", srvKey)
	cliDER, cliKey := leaf("cairn", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil)
	c.client, c.clientKey = write("cairn.pem", "CERTIFICATE", cliDER), writeKey("cairn-key.pem", cliKey)
	return c
}

// Passwords of the test cluster's users.
const (
	natsCairnPassword  = "cairn-test-password"
	natsReaderPassword = "reader-test-password"
	natsOtherPassword  = "other-test-password"
)

// startSecureNATSCluster is three clustered nats-servers set up like
// deploy/nats/nats-server.conf: TLS with client certificates on the client
// port, routes admitted by certificate (CN=nats-route), an account CAIRN
// whose `cairn` user has the permissions of deploy/nats/cairn-permissions.conf
// (the very file), a system account, no default user. Two more users for the
// test: `reader` in CAIRN, allowed only other.>, and `other` in its own
// account OTHER with JetStream and no limits.
func startSecureNATSCluster(t *testing.T, certs natsTestCerts) *natsCluster {
	t.Helper()
	perms, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "cairn-permissions.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return startNATSClusterConf(t, 3, func(p *natsProc, routes string) string {
		dir := filepath.Dir(p.confPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cairn-permissions.conf"), perms, 0o600); err != nil {
			t.Fatal(err)
		}
		tls := fmt.Sprintf("cert_file: %q\n    key_file: %q\n    ca_file: %q\n    timeout: 5", certs.server, certs.serverKey, certs.ca)
		return fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
max_payload: 8MB
tls {
    %s
    verify: true
}
include ./cairn-permissions.conf
accounts {
  CAIRN: {
    jetstream: enabled
    users: [
      { user: cairn, password: %q, permissions: $CAIRN_PERMISSIONS }
      { user: reader, password: %q, permissions: { publish: "other.>", subscribe: ["other.>", "_INBOX.>"] } }
    ]
  }
  OTHER: {
    jetstream: enabled
    users: [ { user: other, password: %q } ]
  }
  SYS: { users: [ { user: sys, password: "sys-test-password" } ] }
}
system_account: SYS
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: "cairn-test"
  listen: "127.0.0.1:%d"
  tls {
    %s
    verify_and_map: true
  }
  authorization { user: "CN=nats-route" }
  routes: [%s]
}
`, p.name, p.clientPort, p.hcPort, tls, natsCairnPassword, natsReaderPassword, natsOtherPassword,
			p.storeDir, p.routePort, tls, routes)
	})
}

// natsErrors collects a connection's asynchronous errors (permission
// violations arrive that way).
type natsErrors struct {
	mu   sync.Mutex
	errs []error
}

func (e *natsErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

// waitFor returns the first collected error containing want, waiting up to
// 5 s.
func (e *natsErrors) waitFor(t *testing.T, want string) error {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e.mu.Lock()
		for _, err := range e.errs {
			if strings.Contains(err.Error(), want) {
				e.mu.Unlock()
				return err
			}
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t.Fatalf("no asynchronous NATS error containing %q; got %v", want, e.errs)
	return nil
}

// TestNATSAuthCluster: Cairn works through a NATS cluster with TLS on client
// and route ports and per-account users, using only the permissions
// deploy/nats/cairn-permissions.conf grants; clients without credentials,
// with a wrong password or without a client certificate are refused at
// connect; a user of the same account limited to other subjects gets
// permission violations on Cairn's subjects and streams; a user of another
// account sees none of Cairn's messages or streams.
func TestNATSAuthCluster(t *testing.T) {
	dir := t.TempDir()
	certs := makeNATSTestCerts(t, dir)
	nc := startSecureNATSCluster(t, certs)
	url := nc.urls()
	tlsOpts := []nats.Option{nats.RootCAs(certs.ca), nats.ClientCert(certs.client, certs.clientKey), nats.MaxReconnects(0)}
	pwFile := filepath.Join(dir, "cairn-nats-password")
	if err := os.WriteFile(pwFile, []byte(natsCairnPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	warmUpR3(t, url, append(tlsOpts, nats.UserInfo("cairn", natsCairnPassword))...)
	cairnLog := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- Cairn's log ---\n%s", cairnLog.String())
		}
	})
	in := startInstanceLog(t, t.TempDir(), cairnLog, "--nats-url", url, "--master-key", clusterMasterKey,
		"--nats-user", "cairn", "--nats-password-file", pwFile,
		"--nats-ca", certs.ca, "--nats-cert", certs.client, "--nats-key", certs.clientKey)

	connect := func(extra ...nats.Option) (*nats.Conn, *natsErrors, error) {
		errs := &natsErrors{}
		opts := append(append([]nats.Option{nats.Name("nats-auth-test"), nats.ErrorHandler(errs.handler)}, tlsOpts...), extra...)
		c, err := nats.Connect(url, opts...)
		if err == nil {
			t.Cleanup(c.Close)
		}
		return c, errs, err
	}

	// Refused at connect.
	if _, _, err := connect(); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("no credentials: want an authorization violation, got %v", err)
	}
	if _, _, err := connect(nats.UserInfo("cairn", "wrong password")); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("wrong password: want an authorization violation, got %v", err)
	}
	if c, err := nats.Connect(url, nats.RootCAs(certs.ca), nats.UserInfo("cairn", natsCairnPassword), nats.MaxReconnects(0)); err == nil {
		c.Close()
		t.Errorf("right password without a client certificate: connected")
	} else {
		t.Logf("right password without a client certificate: %v", err)
	}
	if c, err := nats.Connect(url, nats.UserInfo("cairn", natsCairnPassword), nats.MaxReconnects(0)); err == nil {
		c.Close()
		t.Errorf("plain-text connection: connected")
	}

	// Cairn works through it: a project, a key, functions run by an event
	// and by a schedule (job queue, schedules, durable consumers' acks), a
	// stored file (object store) and a sign-up (the event that carries an
	// email and a password hash).
	const p = "natsauth"
	key := retriedProjectWithKey(t, in, p, "users.read", "users.write", "buckets.read", "buckets.write", "files.read", "files.write",
		"functions.read", "functions.write", "executions.read", "executions.write", "events.read")
	deployWasm(t, in, key, p, &cairnv1.CreateFunctionRequest{FunctionId: "onsignup", Name: "On sign-up", Events: []string{"users.*.create"}})
	deployWasm(t, in, key, p, &cairnv1.CreateFunctionRequest{FunctionId: "tick", Name: "Tick", Schedule: "* * * * * *"})
	// The node starts the project's trigger consumer within its 2 s reconcile.
	triggerReady := time.Now().Add(3 * time.Second)
	op, _ := as(context.Background(), testAdminKey)
	keys, err := in.keys().ListKeys(op, &cairnv1.ListKeysRequest{ProjectId: p})
	if err != nil || len(keys.GetKeys()) != 1 {
		t.Fatalf("list keys: %v %v", keys, err)
	}
	got, err := in.keys().GetKey(op, &cairnv1.GetKeyRequest{ProjectId: p, KeyId: keys.GetKeys()[0].GetId()})
	if err != nil || got.GetKey().GetName() != "server" {
		t.Fatalf("read the key back: %v %v", got, err)
	}

	// Subscribed before the sign-up: Cairn's own user sees it, the others
	// must not.
	cairnConn, _, err := connect(nats.UserInfo("cairn", natsCairnPassword))
	if err != nil {
		t.Fatalf("cairn user: %v", err)
	}
	cairnSub, err := cairnConn.SubscribeSync("cairn." + p + ".>")
	if err != nil {
		t.Fatal(err)
	}
	reader, readerErrs, err := connect(nats.UserInfo("reader", natsReaderPassword), nats.PermissionErrOnSubscribe(true))
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	readerSub, err := reader.SubscribeSync("cairn.>")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := connect(nats.UserInfo("other", natsOtherPassword))
	if err != nil {
		t.Fatalf("other: %v", err)
	}
	otherSub, err := other.SubscribeSync("cairn.>")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*nats.Conn{cairnConn, reader, other} {
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	k, _ := as(context.Background(), key)
	if _, err := in.storage().CreateBucket(k, &cairnv1.CreateBucketRequest{ProjectId: p, BucketId: "docs", Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("cairn over TLS "), 300_000) // 4.5 MB: enough for JetStream flow control on the download
	in.uploadChunked(t, key, p, "docs", "f1", "f1.txt", body, 1<<20)
	if res := in.fetch(t, key, p, "docs", "f1", "download", nil); res.status != http.StatusOK || !bytes.Equal(res.body, body) {
		t.Fatalf("download through the secured cluster: %d, %d bytes", res.status, len(res.body))
	}
	// Realtime presence: the cairn_presence bucket, written and watched.
	pres := in.socket(t, key, "project="+p+"&channels=buckets.docs.files")
	pres.untilLive(t)
	pres.send(t, joinMsg(t, "buckets.docs.files", map[string]any{"via": "tls"}))
	if m := pres.until(t, 15*time.Second, "presence through the secured cluster", func(m *cairnv1.SubscribeResponse) bool {
		return isRejected(m) || m.GetPresence() != nil
	}); m.GetPresence().GetAction() != cairnv1.PresenceAction_PRESENCE_ACTION_JOIN {
		t.Fatalf("presence through the secured cluster: %v", m)
	}
	time.Sleep(time.Until(triggerReady))
	g, _ := guest(context.Background(), p, "")
	if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{Email: "tenant@example.com", Password: "a tenant password"}); err != nil {
		t.Fatalf("sign-up through the secured cluster: %v", err)
	}
	for _, fn := range []struct{ id, trigger string }{{"onsignup", "event"}, {"tick", "schedule"}} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			l, err := in.functions().ListExecutions(k, &cairnv1.ListExecutionsRequest{ProjectId: p, FunctionId: fn.id, Trigger: fn.trigger,
				Status: cairnv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.GetExecutions()) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no completed %s execution of %s within 10 s", fn.trigger, fn.id)
			}
		}
	}

	// Cairn's user saw the sign-up event; it carries the email.
	sawEmail := false
	for deadline := time.Now().Add(5 * time.Second); !sawEmail && time.Now().Before(deadline); {
		m, err := cairnSub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		sawEmail = bytes.Contains(m.Data, []byte("tenant@example.com"))
	}
	if !sawEmail {
		t.Fatal("the cairn user did not see the sign-up event carrying the email (the isolation checks below would prove nothing)")
	}

	// reader (same account, other.> only): its subscription to cairn.> is
	// refused, and so are requests for the project stream's info and
	// messages.
	if _, err := readerSub.NextMsg(2 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("reader subscribing to cairn.>: want a permissions violation, got %v", err)
	}
	readerErrs.waitFor(t, `Permissions Violation for Subscription to "cairn.>"`)
	for _, subj := range []string{"$JS.API.STREAM.INFO.PROJECT_" + p, "$JS.API.DIRECT.GET.PROJECT_" + p} {
		if _, err := reader.Request(subj, []byte(`{"seq":1}`), time.Second); err == nil {
			t.Errorf("reader %s: answered", subj)
		}
		readerErrs.waitFor(t, fmt.Sprintf(`Permissions Violation for Publish to "%s"`, subj))
	}

	// other (its own account): cairn.> is an empty subject space there, and
	// the project stream does not exist.
	if m, err := otherSub.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("other account received %s: %.100q", m.Subject, m.Data)
	}
	js, err := jetstream.New(other)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, "PROJECT_"+p); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("other account, stream PROJECT_%s: want not found, got %v", p, err)
	}
	cairnJS, err := jetstream.New(cairnConn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cairnJS.Stream(ctx, "PROJECT_"+p); err != nil {
		t.Errorf("cairn user, stream PROJECT_%s: %v", p, err)
	}

	// Nothing Cairn did was refused: the permissions file lists all it uses.
	if log := cairnLog.String(); strings.Contains(log, "NATS error") || strings.Contains(strings.ToLower(log), "permissions violation") {
		t.Errorf("Cairn's log shows refused NATS operations:\n%s", log)
	}
}

// syncBuffer is a bytes.Buffer safe for a server's log goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// retriedProjectWithKey is newProjectWithKey retried as a client would, with
// the same Idempotency-Key, while a fresh R3 cluster on a busy machine
// answers unavailable or times out creating the project's streams.
func retriedProjectWithKey(t *testing.T, in *instance, project string, scopes ...string) string {
	t.Helper()
	retry := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			ctx, info := as(context.Background(), testAdminKey)
			info.RequestHeader().Set("Idempotency-Key", project+"-"+what)
			err := call(ctx)
			if err == nil {
				return
			}
			if c := connect.CodeOf(err); (c != connect.CodeUnavailable && c != connect.CodeDeadlineExceeded) || time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			t.Logf("%s: %v; retrying", what, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	retry("create project", func(ctx context.Context) error {
		_, err := in.projects().CreateProject(ctx, &cairnv1.CreateProjectRequest{ProjectId: project, Name: project})
		return err
	})
	var secret string
	retry("create key", func(ctx context.Context) error {
		k, err := in.keys().CreateKey(ctx, &cairnv1.CreateKeyRequest{ProjectId: project, Name: "server", Scopes: &cairnv1.Scopes{Scopes: scopes}})
		secret = k.GetSecret()
		return err
	})
	return secret
}

// warmUpR3 waits until the fresh cluster can create an R3 stream (right
// after the meta leader is elected the first stream creations can still
// time out), so Cairn's start-up does not race it. The stream's subjects,
// cairn._warmup.>, are no project's.
func warmUpR3(t *testing.T, url string, opts ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("warm-up connection: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "NATSAUTH_WARMUP", Subjects: []string{"cairn._warmup.>"}, Replicas: 3})
		if err == nil {
			err = js.DeleteStream(ctx, "NATSAUTH_WARMUP")
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster could not create an R3 stream within 30 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNATSAuthValidation: the combinations of --nats-* flags, the refusal of
// a remote --nats-url without credentials (validation only: nothing here
// connects anywhere), and that serve fails on them before it generates or
// prints anything.
func TestNATSAuthValidation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      config
		wantErr  []string // substrings of the error; none: valid
		insecure bool
	}{
		{name: "embedded", cfg: config{}},
		{name: "loopback without credentials", cfg: config{NATSURL: "nats://127.0.0.1:4222,nats://localhost:4223,[::1]:4224"}},
		{name: "remote without credentials", cfg: config{NATSURL: "nats://10.0.0.1:4222"},
			wantErr: []string{"10.0.0.1", "not loopback", "--nats-creds", "--nats-user", "--nats-insecure"}},
		{name: "one remote among loopback", cfg: config{NATSURL: "nats://127.0.0.1:4222,nats://nats-2:4222"},
			wantErr: []string{"nats-2", "--nats-insecure"}},
		{name: "a name resolving to loopback is remote", cfg: config{NATSURL: "nats://localhost.example.com:4222"},
			wantErr: []string{"--nats-insecure"}},
		{name: "remote with --nats-insecure", cfg: config{NATSURL: "nats://10.0.0.1:4222", NATSInsecure: true}, insecure: true},
		{name: "remote with a password", cfg: config{NATSURL: "tls://10.0.0.1:4222", NATSUser: "cairn", NATSPassword: "pw"}},
		{name: "remote with creds", cfg: config{NATSURL: "nats://10.0.0.1:4222", NATSCreds: "cairn.creds"}},
		{name: "remote with a token file", cfg: config{NATSURL: "nats://10.0.0.1:4222", NATSTokenFile: "token"}},
		{name: "remote with a client certificate", cfg: config{NATSURL: "nats://10.0.0.1:4222", NATSCert: "c.pem", NATSKey: "k.pem"}},
		{name: "remote with user info in the URL", cfg: config{NATSURL: "nats://cairn:pw@10.0.0.1:4222"}},
		{name: "cert without key", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSCert: "c.pem"},
			wantErr: []string{"--nats-cert needs --nats-key"}},
		{name: "key without cert", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSKey: "k.pem"},
			wantErr: []string{"--nats-key needs --nats-cert"}},
		{name: "user without password", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSUser: "cairn"},
			wantErr: []string{"--nats-user needs --nats-password"}},
		{name: "password without user", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSPasswordFile: "pw"},
			wantErr: []string{"--nats-password needs --nats-user"}},
		{name: "password twice", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSUser: "u", NATSPassword: "pw", NATSPasswordFile: "pw"},
			wantErr: []string{"--nats-password and --nats-password-file"}},
		{name: "token twice", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSToken: "t", NATSTokenFile: "t"},
			wantErr: []string{"--nats-token and --nats-token-file"}},
		{name: "two methods", cfg: config{NATSURL: "nats://127.0.0.1:4222", NATSCreds: "c", NATSToken: "t"},
			wantErr: []string{"one NATS authentication method", "--nats-creds and --nats-token"}},
		{name: "URL user and a flag", cfg: config{NATSURL: "nats://u:p@127.0.0.1:4222", NATSNKey: "seed"},
			wantErr: []string{"--nats-nkey and credentials in --nats-url"}},
		{name: "credentials without --nats-url", cfg: config{NATSCreds: "c"},
			wantErr: []string{"only with --nats-url"}},
		{name: "TLS without --nats-url", cfg: config{NATSCA: "ca.pem"},
			wantErr: []string{"only with --nats-url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insecure, err := tc.cfg.validateNATS()
			if len(tc.wantErr) == 0 {
				if err != nil || insecure != tc.insecure {
					t.Fatalf("want valid (insecure %v), got %v (insecure %v)", tc.insecure, err, insecure)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error mentioning %q, got none", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	t.Run("env twins", func(t *testing.T) {
		env := map[string]string{
			"CAIRN_NATS_URL": "nats://10.0.0.1:4222", "CAIRN_NATS_USER": "cairn", "CAIRN_NATS_PASSWORD": "env secret",
			"CAIRN_NATS_CA": "ca.pem", "CAIRN_NATS_CERT": "c.pem", "CAIRN_NATS_KEY": "k.pem",
			"CAIRN_NATS_SERVER_NAME": "nats.internal", "CAIRN_NATS_INSECURE": "true", "CAIRN_NATS_CREDS": "x.creds",
			"CAIRN_NATS_NKEY": "seed", "CAIRN_NATS_TOKEN": "tok", "CAIRN_NATS_TOKEN_FILE": "tf", "CAIRN_NATS_PASSWORD_FILE": "pf",
		}
		var cfg config
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		var help bytes.Buffer
		fs.SetOutput(&help)
		cfg.flags(fs, func(k string) string { return env[k] })
		if err := fs.Parse([]string{"--nats-password", "flag secret"}); err != nil {
			t.Fatal(err)
		}
		want := config{NATSURL: env["CAIRN_NATS_URL"], NATSUser: "cairn", NATSPassword: "flag secret", NATSCA: "ca.pem",
			NATSCert: "c.pem", NATSKey: "k.pem", NATSServerName: "nats.internal", NATSInsecure: true, NATSCreds: "x.creds",
			NATSNKey: "seed", NATSToken: "tok", NATSTokenFile: "tf", NATSPasswordFile: "pf"}
		gotFields := []any{cfg.NATSURL, cfg.NATSUser, cfg.NATSPassword, cfg.NATSCA, cfg.NATSCert, cfg.NATSKey, cfg.NATSServerName,
			cfg.NATSInsecure, cfg.NATSCreds, cfg.NATSNKey, cfg.NATSToken, cfg.NATSTokenFile, cfg.NATSPasswordFile}
		wantFields := []any{want.NATSURL, want.NATSUser, want.NATSPassword, want.NATSCA, want.NATSCert, want.NATSKey, want.NATSServerName,
			want.NATSInsecure, want.NATSCreds, want.NATSNKey, want.NATSToken, want.NATSTokenFile, want.NATSPasswordFile}
		if fmt.Sprint(gotFields) != fmt.Sprint(wantFields) {
			t.Errorf("flags from env:\n got %v\nwant %v", gotFields, wantFields)
		}
		fs.PrintDefaults()
		if strings.Contains(help.String(), "env secret") || strings.Contains(help.String(), `default "tok"`) {
			t.Errorf("-h shows a secret from the environment:\n%s", help.String())
		}
	})

	t.Run("serve fails before generating anything", func(t *testing.T) {
		for _, args := range [][]string{
			{"--nats-url", "nats://127.0.0.1:1", "--nats-cert", "c.pem"},
			{"--nats-url", "nats://127.0.0.1:1", "--nats-user", "cairn", "--nats-password-file", filepath.Join(t.TempDir(), "missing")},
		} {
			dataDir := filepath.Join(t.TempDir(), "data")
			var stdout bytes.Buffer
			err := run(context.Background(), append([]string{"serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0"}, args...),
				&stdout, io.Discard, func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), "--nats-") {
				t.Errorf("serve %v: want an error naming the flag, got %v", args, err)
			}
			if stdout.Len() > 0 {
				t.Errorf("serve %v printed %q", args, stdout.String())
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve %v created the data directory (%v)", args, err)
			}
		}
	})

	t.Run("URL redacted in logs", func(t *testing.T) {
		got := redactedNATSURL("nats://cairn:hunter2@10.0.0.1:4222,nats://tok3n@10.0.0.2:4222,nats://10.0.0.3:4222")
		if strings.Contains(got, "hunter2") || strings.Contains(got, "tok3n") || !strings.Contains(got, "10.0.0.3") {
			t.Errorf("redacted: %s", got)
		}
	})
}
