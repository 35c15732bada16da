package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"connectrpc.com/grpcreflect/v2"
	"connectrpc.com/otelconnect"
	"connectrpc.com/validate"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/api/hosts"
	"github.com/cairn-dev/cairn/api/jwt"
	"github.com/cairn-dev/cairn/api/oauth"
	"github.com/cairn-dev/cairn/api/origins"
	"github.com/cairn-dev/cairn/api/unary"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/mail"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/proto/grpc/health/v1/healthv1connect"
	"github.com/cairn-dev/cairn/realtime"
	"github.com/cairn-dev/cairn/sites"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
	"github.com/cairn-dev/cairn/usage"
	"github.com/cairn-dev/cairn/webhooks"
)

// ReadModels is what the API reads from the node's projections.
type ReadModels interface {
	eventlog.ReadSide
	Project(id string) (*eventsv1.Project, error)
	ListProjects(after string, limit int) ([]*eventsv1.Project, error)
	Key(project, keyID string) (*eventsv1.Key, error)
	Operator(id string) (*eventsv1.Operator, error)
	ListOperators(after string, limit int) ([]*eventsv1.Operator, error)
	OperatorSessionByHash(hash []byte) (projections.SessionRef, error)
	ListKeys(project, after string, limit int) ([]*eventsv1.Key, error)
	Webhook(project, id string) (*eventsv1.Webhook, error)
	ListWebhooks(project, after string, limit int) ([]*eventsv1.Webhook, error)
	ListDeliveryWebhooks(project string) ([]projections.DeliveryWebhook, error)
	DeliveryWebhook(project, id string) (projections.DeliveryWebhook, error)
	ListWebhookDeliveries(project, uid, after string, limit int) ([]*eventsv1.WebhookDelivery, error)
	Site(project, site string) (*eventsv1.Site, error)
	ListSites(project, after string, limit int) ([]*eventsv1.Site, error)
	Deployment(project, site, id string) (*eventsv1.Deployment, error)
	ListDeployments(project, site, after string, limit int) ([]*eventsv1.Deployment, error)
	DomainClaim(domain string) (*eventsv1.DomainClaimed, error)
	User(project, id string) (*eventsv1.User, error)
	SessionByHash(project string, hash []byte) (projections.SessionRef, error)
	ListUsers(project, after string, limit int) ([]*eventsv1.User, error)
	SearchUsers(project, after string, limit int, match func(*eventsv1.User) bool) ([]*eventsv1.User, string, error)
	ClaimHolder(project, namespace, value string) (string, error)
	AuthSettings(project string) (*eventsv1.AuthSettings, error)
	Team(project, id string) (*eventsv1.Team, error)
	ListTeams(project, search, after string, limit int) ([]*eventsv1.Team, error)
	Membership(project, team, id string) (*eventsv1.Membership, error)
	ListMemberships(project, team, after string, limit int) ([]*eventsv1.Membership, error)
	ListUserMemberships(project, user string) ([]*eventsv1.Membership, error)
	ListDatabases(project, after string, limit int) ([]*eventsv1.Database, error)
	ListCollections(project, db, after string, limit int) ([]*eventsv1.Collection, error)
	documentReads
	storageReads
	functionReads
	Ready() bool
	// AppliedSeq is the last sequence of stream this node has applied.
	AppliedSeq(stream string) uint64
	// DailyUsage is a project's usage per day from its log.
	DailyUsage(project, from, to string) ([]projections.DayUsage, error)
	// MetaVersion changes whenever a project, key, database or collection
	// may have changed (projections.MetaVersion): metaCache's validity.
	MetaVersion() uint64
}

// SiteBlobs stores and loads site files, content-addressed per project.
type SiteBlobs interface {
	sites.Blobs
	Missing(ctx context.Context, project string, shas []string) ([]string, error)
	Put(ctx context.Context, project, sha string, r io.Reader) error
	PutBytes(ctx context.Context, project string, data []byte) (string, error)
	List(ctx context.Context, project string) ([]sites.BlobInfo, error)
	Usage(ctx context.Context, project string) (int64, error)
	Delete(ctx context.Context, project, sha string) error
}

// errNotFound is what ReadModels return for a missing resource.
var errNotFound = projections.ErrNotFound

// Config wires a Server.
type Config struct {
	Log   *eventlog.Log
	Reads ReadModels
	Store *streams.Store
	// AdminKey is the operator credential.
	AdminKey string
	// MasterKey seals and derives instance secrets (32 bytes).
	MasterKey []byte
	// MaxRequestBytes bounds one request message (default 1 MiB).
	MaxRequestBytes int
	// Connected reports whether the NATS connection is up (for health).
	Connected func() bool
	Logger    *slog.Logger
	Now       func() time.Time
	// Stopping, when closed, ends long-lived streams so shutdown can drain.
	Stopping <-chan struct{}
	// Hijacked, if set, counts open WebSockets, for shutdown to wait on.
	Hijacked *Hijacked
	// RequestLogLevel is the level of the one line logged per request
	// (default info).
	RequestLogLevel slog.Level
	// Tracer, when set, traces RPCs (otelconnect), realtime deliveries and
	// function executions; nil traces nothing.
	Tracer trace.TracerProvider
	// Metrics, when set, times RPCs and is served on GET /metrics to the
	// operator (metrics.go: operatorOnly).
	Metrics *Metrics
	// Blobs holds site files; sites are not served without it.
	Blobs SiteBlobs
	// PublicURL is where clients reach this node ("http://localhost:8080"),
	// for the URLs answers carry.
	PublicURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client address (for per-address rate limits).
	TrustedProxies []netip.Prefix
	// NoAuthRateLimits turns the sign-in/sign-up/token limits off (load tests).
	NoAuthRateLimits bool
	// ProjectRate and ProjectBurst are the requests per second (and burst)
	// each project's callers may make on this node unless the project's
	// limits say otherwise; 0 means DefaultProjectRate/DefaultProjectBurst,
	// a negative rate turns the limit off (projectrate.go).
	ProjectRate, ProjectBurst int
	// ProjectConcurrency is how many calls of each project's callers (one
	// bound for keys and sessions, one for guests) run at once on this
	// node unless the project's limits say otherwise; 0 means
	// DefaultProjectConcurrency per core (at least 64), a negative value
	// turns the bound off.
	ProjectConcurrency int
	// SitesDomain, when set, serves site S of project P at the host
	// S.P.<SitesDomain>, and its deployment D at D.S.P.<SitesDomain>.
	SitesDomain string
	// DNSResolver ("host:port") answers the TXT lookups that prove control
	// of custom domains; empty: the system resolver.
	DNSResolver string
	// InviteMailer, when set, delivers team invitations.
	InviteMailer inviteMailer
	// OAuthHTTPClient, when set, makes every request to OAuth2/OIDC
	// providers (discovery, token exchange, keys, user info); default a
	// client with a 10-second timeout.
	OAuthHTTPClient *http.Client
	// Databases bounds document queries and batches.
	Databases DatabaseLimits
	// Storage bounds files, uploads and previews.
	Storage StorageLimits
	// Realtime bounds realtime subscriptions.
	Realtime RealtimeLimits
	// Presence configures realtime presence.
	Presence PresenceOptions
	// Functions bounds functions; Runtimes runs them (nil: this node runs
	// none, and works on no queued execution, trigger or schedule).
	Functions FunctionLimits
	Runtimes  FunctionRuntimes
	// Webhooks bounds webhook deliveries.
	Webhooks WebhookOptions
	// Meter counts this node's egress and realtime use per project (nil
	// counts nothing).
	Meter *usage.Meter
	// MaxImportBytes bounds a package uploaded to POST /v1/projects/import
	// (DefaultMaxImportBytes when <= 0).
	MaxImportBytes int64
	// OperatorSessionTTL is how long an operator account's session lasts
	// (DefaultOperatorSessionTTL when <= 0); it applies to new sessions.
	OperatorSessionTTL time.Duration
	// SystemMail is the instance's own SMTP server, for operator
	// invitations; nil: invitation links are answered to the inviter.
	SystemMail *mail.Config
	// NoFastUnary serves every call through connecthttp, also the hot
	// calls' plain requests api/unary answers otherwise (for comparison).
	NoFastUnary bool
}

// fastUnaryProcedures are the calls whose plain requests api/unary serves.
var fastUnaryProcedures = map[string]bool{
	cairnv1connect.DatabasesServiceGetDocumentProcedure:    true,
	cairnv1connect.DatabasesServiceListDocumentsProcedure:  true,
	cairnv1connect.DatabasesServiceCreateDocumentProcedure: true,
}

// fastUnaryMaxBody is the largest request body api/unary serves; larger
// ones (rare for these calls) meet connecthttp's limits and errors.
const fastUnaryMaxBody = 256 << 10

// DatabaseLimits are the document database's limits; zero means default.
type DatabaseLimits struct {
	// MaxQueryLimit is the largest page a query may ask for (100).
	MaxQueryLimit int
	// MaxQueryScan is how many documents one query may examine before it
	// fails asking for an index (projections.DefaultMaxScan).
	MaxQueryScan int
	// MaxBatchOperations bounds a bulk call and a transaction (100).
	MaxBatchOperations int
	// MaxTransactionBytes and MaxProjectTransactionBytes bound the staged
	// document data of one transaction and of a project's open ones
	// (DefaultMaxTransactionBytes, DefaultMaxProjectTransactionBytes).
	MaxTransactionBytes, MaxProjectTransactionBytes int64
}

// Server holds the handlers' dependencies.
type Server struct {
	log           *eventlog.Log
	reads         ReadModels
	cfg           DatabaseLimits
	storage       StorageLimits
	renders       chan struct{} // preview renders in flight
	hub           *realtime.Hub
	presence      *realtime.Presence // nil without a store
	functions     FunctionLimits
	runtimes      FunctionRuntimes
	codes         codeCache
	execMu        sync.Mutex
	execSlots     map[string]chan struct{}
	validator     protovalidate.Validator
	store         *streams.Store
	webhookOpts   WebhookOptions
	webhookClient *http.Client
	auth          *authenticator
	metas         *metaCache
	masterKey     []byte
	connected     func() bool
	logger        *slog.Logger
	reqLevel      slog.Level // of the per-request log line
	tracer        trace.TracerProvider
	now           func() time.Time
	operatorTTL   time.Duration // of new operator sessions
	systemMail    *mail.Config
	maxBytes      int
	stopping      <-chan struct{}
	stopCtx       func() context.Context // canceled once stopping is closed
	hijacked      *Hijacked
	metrics       *Metrics
	blobs         SiteBlobs
	siteUse       siteUsage
	siteFiles     *sites.Server
	manifests     manifestCache
	sitesDomain   string
	publicURL     string
	hosts         *hosts.Scheme
	origins       *origins.Policy
	resolver      *net.Resolver
	hasher        *hasher
	jwt           *jwt.Issuer
	limits        *authLimits
	rates         *projectRates
	mail          *mail.Sender
	mailer        inviteMailer
	oauth         *oauth.Flow
	// challenges holds passkey ceremonies between their two calls.
	challenges *streams.Challenges
	maxImport  int64
	meter      *usage.Meter
}

// New returns the HTTP handler serving every Cairn service.
func New(cfg Config) (http.Handler, error) {
	if cfg.AdminKey == "" || len(cfg.MasterKey) < 32 {
		return nil, errors.New("api: an admin key and a 32-byte master key are required")
	}
	s := &Server{log: cfg.Log, reads: cfg.Reads, store: cfg.Store, masterKey: cfg.MasterKey,
		connected: cfg.Connected, logger: cfg.Logger, reqLevel: cfg.RequestLogLevel, tracer: cfg.Tracer, now: cfg.Now, maxBytes: cfg.MaxRequestBytes,
		stopping: cfg.Stopping, hijacked: cfg.Hijacked, metrics: cfg.Metrics, cfg: cfg.Databases, storage: cfg.Storage.withDefaults(), blobs: cfg.Blobs, mailer: cfg.InviteMailer,
		sitesDomain: strings.ToLower(strings.Trim(cfg.SitesDomain, ".")), publicURL: strings.TrimSuffix(cfg.PublicURL, "/")}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.stopCtx = sync.OnceValue(func() context.Context {
		// Started with the first stream; it ends when the server stops.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-s.stopping
			cancel()
		}()
		return ctx
	})
	public := s.publicURL
	if public == "" {
		public = "http://localhost"
	}
	var err error
	if s.hosts, err = hosts.New(public, s.sitesDomain); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.origins = origins.NewPolicy(platformSource{cfg.Reads}, cfg.Now)
	if s.resolver, err = newResolver(cfg.DNSResolver); err != nil {
		return nil, err
	}
	s.renders = make(chan struct{}, runtime.GOMAXPROCS(0))
	s.functions, s.runtimes = cfg.Functions.withDefaults(), cfg.Runtimes
	s.codes.m, s.execSlots = map[string][]byte{}, map[string]chan struct{}{}
	// Realtime feeds end when the server starts stopping.
	hubCtx := context.Background()
	if s.stopping != nil {
		var stopHub context.CancelFunc
		hubCtx, stopHub = context.WithCancel(hubCtx)
		go func() { <-s.stopping; stopHub() }()
	}
	rl := cfg.Realtime
	rl.ProjectBudget = s.deliveryBudget
	// s.rates is made below; the hub asks only once it fans out.
	rl.OthersCalls = func(project string) int64 { return s.rates.othersCalls(project) }
	s.hub = realtime.NewHub(hubCtx, s.store, s.reads.WaitApplied, s.logger, rl)
	if s.tracer != nil {
		s.hub.WithTracer(s.tracer)
	}
	if s.runtimes != nil && s.store != nil {
		go s.runFunctionWorkers(hubCtx)
	}
	s.webhookOpts = cfg.Webhooks
	if s.webhookOpts.MaxBackoff <= 0 {
		s.webhookOpts.MaxBackoff = time.Minute
	}
	s.webhookClient = webhooks.NewClient(webhooks.ClientOptions{Allow: cfg.Webhooks.Allow, Timeout: cfg.Webhooks.Timeout})
	if s.store != nil {
		go s.runWebhookWorkers(hubCtx)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBytes <= 0 {
		s.maxBytes = 1 << 20
	}
	s.meter = cfg.Meter
	s.maxImport = cfg.MaxImportBytes
	s.operatorTTL = cfg.OperatorSessionTTL
	s.systemMail = cfg.SystemMail
	if s.operatorTTL <= 0 {
		s.operatorTTL = DefaultOperatorSessionTTL
	}
	if s.maxImport <= 0 {
		s.maxImport = DefaultMaxImportBytes
	}
	if s.connected == nil {
		s.connected = func() bool { return true }
	}
	s.metas = newMetaCache(cfg.Reads.MetaVersion)
	s.auth = &authenticator{adminHash: hashToken(cfg.AdminKey), fnKeys: functionKeySecret(cfg.MasterKey), reads: cfg.Reads, metas: s.metas, now: s.now}
	h, err := newHasher()
	if err != nil {
		return nil, err
	}
	s.hasher = h
	if s.limits, err = newAuthLimits(cfg.TrustedProxies, cfg.NoAuthRateLimits); err != nil {
		return nil, err
	}
	if s.rates, err = newProjectRates(cfg.ProjectRate, cfg.ProjectBurst, cfg.ProjectConcurrency, s.now); err != nil {
		return nil, err
	}
	s.mail = &mail.Sender{Logger: s.logger, Now: s.now}
	if s.mailer == nil {
		s.mailer = projectInvites{s}
	}
	s.jwt = &jwt.Issuer{MasterKey: cfg.MasterKey, BaseURL: s.publicURL, Leeway: 5 * time.Second}
	// One Flow per server: its state key is derived from the master key, so
	// any node completes a sign-in another began.
	if s.oauth, err = oauth.New(oauth.Config{MasterKey: cfg.MasterKey, HTTPClient: cfg.OAuthHTTPClient, Logger: s.logger, Now: s.now}); err != nil {
		return nil, fmt.Errorf("api: oauth: %w", err)
	}

	if s.store != nil {
		s.challenges = s.store.Challenges(passkeyChallengeTTL)
		s.presence = realtime.NewPresence(hubCtx, s.store.Presence(cmp.Or(cfg.Presence.TTL, DefaultPresenceTTL)), s.logger, cfg.Presence.PresenceLimits)
	}

	server, err := s.connectServer()
	if err != nil {
		return nil, err
	}

	// RPCs on their own mux, with the whole body bounded too (compressed or
	// streamed requests), with room for framing around the largest message.
	rpc := procedureMux{ServeMux: http.NewServeMux(), exact: map[string]http.Handler{}, maxBytes: int64(s.maxBytes) + 64<<10}
	// Small messages are not worth gzip: it was ~10 % of a write's CPU.
	enc := newSharedEncodings()
	// Connect's JSON codec drops unknown fields; a misspelt one ("id" for
	// "projectId") then silently means "unset". Refuse it by name instead.
	jsonCodec := connectproto.NewJSONCodec()
	jsonCodec.UnmarshalOptions.DiscardUnknown = false
	codecs := []connect.Codec{sharedBinary{connectproto.NewBinaryCodec(), enc}, sharedJSON{jsonCodec, enc}}
	// gzip at klauspost/compress's fastest level (gzip.go), named for the fast path too.
	compressors := []connect.Compressor{newFastGzip()}
	const compressMin = 1024
	connecthttp.Mount(rpc, server, connecthttp.WithReadMaxBytes(s.maxBytes), connecthttp.WithCompressMinBytes(compressMin),
		connecthttp.WithCodecs(codecs...), connecthttp.WithCompressors(compressors...))
	if !cfg.NoFastUnary && s.tracer == nil {
		// The hottest calls' plain requests skip connecthttp's per-call
		// machinery (api/unary); the same interceptors and handlers answer.
		// Not with tracing: otelconnect reads connecthttp's transport info.
		fast := unary.New(server, unary.Options{Codecs: codecs, Compressors: compressors, CompressMinBytes: compressMin,
			MaxBodyBytes: min(int64(s.maxBytes), fastUnaryMaxBody)})
		for spec := range server.Specs() {
			if h, ok := rpc.exact[spec.Procedure]; ok && fastUnaryProcedures[spec.Procedure] {
				rpc.exact[spec.Procedure] = fast.Handler(spec, h)
			}
		}
		if s.metrics != nil {
			s.metrics.countFastUnary(fast.Served)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.MaxBytesHandler(rpc.ServeMux, rpc.maxBytes))
	mux.HandleFunc(oauthCallbackPath, s.oauthCallback)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.operatorOnly(s.metrics.handler()))
	}
	if s.blobs != nil {
		s.siteFiles = sites.NewServer(s.blobs, sites.ServerOptions{Logger: s.logger})
		s.manifests.max = 256
		s.mountSites(mux)
		mux.HandleFunc("GET "+tlsAskPath, s.tlsAsk)
	}
	s.mountStorage(mux)
	s.mountFunctions(mux)
	s.mountTransfer(mux)
	s.mountBackup(mux)
	s.mountConsole(mux)
	mux.HandleFunc("GET "+realtimePath, s.serveRealtime)
	mux.HandleFunc("GET /v1/projects/{project}/jwks.json", s.serveJWKS)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			http.Error(w, "not ready: NATS unreachable or projections catching up", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return s.observe(s.edge(routed(mux, rpc.exact))), nil
}

// errStopping is why the server ends a live stream when it shuts down.
var errStopping = errors.New("server stopping")

// stopped is what a server stream that ended with err returns: Unavailable
// "server stopping" when the server is shutting down, so a client tells it
// from a clean end (and reconnects, to another node), else err.
func (s *Server) stopped(err error) error {
	if s.stopping != nil && isClosed(s.stopping) {
		return connect.NewError(connect.CodeUnavailable, errStopping.Error())
	}
	return err
}

// Hijacked counts the connections taken over from net/http (WebSockets),
// which http.Server.Shutdown neither closes nor waits for.
type Hijacked struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (h *Hijacked) add(d int) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n += d
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

// Wait returns once no hijacked connection is open, or with ctx's error.
func (h *Hijacked) Wait(ctx context.Context) error {
	for {
		h.mu.Lock()
		if h.n == 0 {
			h.mu.Unlock()
			return nil
		}
		if h.changed == nil {
			h.changed = make(chan struct{})
		}
		ch, n := h.changed, h.n
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("api: %d WebSocket connections still open: %w", n, ctx.Err())
		case <-ch:
		}
	}
}

// streamContext returns ctx, also canceled when the server starts stopping.
// One goroutine of the server's waits for stopping, not one per stream: a
// node with thousands of realtime connections would otherwise hold as
// many more goroutines for every collection to scan.
func (s *Server) streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if s.stopping == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(s.stopCtx(), cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// connectServer registers every service behind the interceptors, outermost
// first: metrics, the request log, errors and panics, then access, then
// validation.
func (s *Server) connectServer() (*connect.Server, error) {
	full, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	validator := quickValidator{full}
	s.validator = validator
	interceptors := []connect.ServerInterceptor{
		logInterceptor,
		errorInterceptor(s.logger),
		s.accessInterceptor,
		validate.NewServerInterceptor(validate.WithValidator(validator)),
	}
	if s.tracer != nil {
		// Remote parents become links, not parents (otelconnect's default):
		// a client does not get to join the server's traces.
		otel, err := otelconnect.NewServerInterceptor(otelconnect.WithTracerProvider(s.tracer),
			otelconnect.WithPropagator(propagation.TraceContext{}), otelconnect.WithoutMetrics())
		if err != nil {
			return nil, err
		}
		interceptors = append([]connect.ServerInterceptor{otel}, interceptors...)
	}
	if s.metrics != nil {
		// Outermost: it sees the final code of every call.
		interceptors = append([]connect.ServerInterceptor{s.metrics.interceptor}, interceptors...)
	}
	server := connect.NewServer(interceptors...)
	cairnv1connect.RegisterProjectsServiceHandler(server, &projectsHandler{s})
	cairnv1connect.RegisterKeysServiceHandler(server, &keysHandler{s})
	cairnv1connect.RegisterEventsServiceHandler(server, &eventsHandler{s})
	cairnv1connect.RegisterSitesServiceHandler(server, &sitesHandler{s})
	cairnv1connect.RegisterAccountServiceHandler(server, &accountHandler{Server: s})
	cairnv1connect.RegisterPasskeyServiceHandler(server, &passkeysHandler{Server: s})
	cairnv1connect.RegisterUsersServiceHandler(server, &usersHandler{s})
	cairnv1connect.RegisterTeamsServiceHandler(server, &teamsHandler{s})
	cairnv1connect.RegisterDatabasesServiceHandler(server, &databasesHandler{Server: s, outs: newDocOuts()})
	cairnv1connect.RegisterStorageServiceHandler(server, &storageHandler{Server: s})
	cairnv1connect.RegisterRealtimeServiceHandler(server, &realtimeHandler{Server: s})
	cairnv1connect.RegisterFunctionsServiceHandler(server, &functionsHandler{Server: s})
	cairnv1connect.RegisterWebhooksServiceHandler(server, &webhooksHandler{s})
	cairnv1connect.RegisterOperatorsServiceHandler(server, &operatorsHandler{s})
	healthv1connect.RegisterHealthHandler(server, &healthHandler{s})
	grpcreflect.Register(server)
	return server, nil
}

func (s *Server) ready() bool { return s.connected() && s.reads.Ready() }

// meta builds what a write records about an RPC: actor, correlation and
// idempotency.
func (s *Server) meta(ctx context.Context) (eventlog.Meta, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	return writeMeta(principal(ctx), info.Spec.Procedure, info.RequestHeader().Get)
}

// writeMeta builds a write's Meta from the caller, the operation and the
// request headers (an RPC's or a plain HTTP request's).
func writeMeta(p access.Principal, operation string, header func(string) string) (eventlog.Meta, error) {
	a := actor(p)
	// Idempotency keys are scoped to the caller and the operation: another
	// caller reusing a key never receives this caller's result.
	m := eventlog.Meta{Actor: a, Scope: operation + "\x00" + a.GetKind().String() + "\x00" + a.GetProjectId() + "\x00" + a.GetId()}
	m.CorrelationID = header(headerRequestID)
	if len(m.CorrelationID) > 128 {
		m.CorrelationID = m.CorrelationID[:128]
	}
	if k := header(headerIdempotencyKey); k != "" {
		if len(k) > 255 || !printable(k) {
			return m, connect.Errorf(connect.CodeInvalidArgument, "%s: at most 255 printable ASCII characters", headerIdempotencyKey)
		}
		m.IdempotencyKey = k
	}
	return m, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// setSeq answers a write with the stream sequence of its last event.
func setSeq(ctx context.Context, seq uint64) {
	if info, ok := connect.CallInfoForServerContext(ctx); ok && seq > 0 {
		info.ResponseHeader().Set(headerSeq, strconv.FormatUint(seq, 10))
	}
}

// notFound maps a read model's miss to a domain error naming what is missing.
func notFound(err error, what string) error {
	if errors.Is(err, errNotFound) {
		return domain.Errorf(domain.KindNotFound, "%s not found", what)
	}
	return err
}
