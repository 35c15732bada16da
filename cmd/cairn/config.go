package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairn-dev/cairn/mail"
	"github.com/cairn-dev/cairn/projections"
	"github.com/cairn-dev/cairn/streams"
)

// config is the server's configuration: flags, each with an environment
// variable of the same meaning (flags win).
type config struct {
	DataDir  string
	HTTPAddr string
	NATSURL  string
	// NATS client security for --nats-url (see natsauth.go): one
	// authentication method, TLS, and the escape hatch for an unauthenticated
	// remote server.
	NATSCreds, NATSNKey                      string
	NATSUser, NATSPassword, NATSPasswordFile string
	NATSToken, NATSTokenFile                 string
	NATSCA, NATSCert, NATSKey                string
	NATSServerName                           string
	NATSInsecure                             bool
	AdminKey                                 string
	// MasterKey is hex; generated into the data directory when empty.
	MasterKey string
	// Sync is "always" or a JetStream sync interval such as "100ms".
	Sync string
	// Replicas of every stream; 0 = auto (1 embedded or unclustered, 3 on
	// a cluster of at least three servers).
	Replicas        int
	LogLevel        string
	LogFormat       string // "json", "text" or "" (text on a terminal, else JSON)
	RequestLog      bool   // one line per request at info; off, at debug
	OTLPEndpoint    string // where spans go over OTLP/HTTP; empty: no tracing
	SitesDomain     string
	PublicURL       string
	MaxRequestBytes int
	// TrustedProxies is a comma-separated list of CIDRs whose
	// X-Forwarded-For is believed.
	TrustedProxies string
	// NoAuthRateLimits turns the sign-in and token limits off.
	NoAuthRateLimits bool
	// NoFastUnary sends the hottest calls' plain Connect requests through
	// connect-go instead of the lean unary path (api/unary); the zero
	// value keeps the path on, as --fast-unary's default does.
	NoFastUnary bool
	// ProjectRate and ProjectBurst are each project's default request rate
	// and burst per node (api.Config); a negative rate turns it off.
	ProjectRate, ProjectBurst int
	// ProjectConcurrency is each project's default bound on calls in
	// flight per node (api.Config); negative turns it off.
	ProjectConcurrency int
	// MetricsProjectLabels labels projection metrics per project.
	MetricsProjectLabels bool
	// Document database limits (api.DatabaseLimits); 0 = default.
	MaxQueryLimit, MaxQueryScan, MaxBatchOperations int
	MaxTransactionBytes, MaxProjectTransactionBytes int64
	// Storage limits (api.StorageLimits); 0 = default.
	MaxFileSize, StorageQuota int64
	// MaxImportBytes bounds an uploaded project package.
	MaxImportBytes int64
	// UsageFlushEvery is how often the node publishes its usage counters.
	UsageFlushEvery time.Duration
	UploadExpiry    time.Duration
	// OperatorSessionTTL is how long a console sign-in lasts.
	OperatorSessionTTL time.Duration
	// The instance's own SMTP server, for operator invitations; no host:
	// invitation links are shown to the inviter instead.
	SMTPHost, SMTPUsername, SMTPPassword, SMTPSender, SMTPSenderName, SMTPSecurity string
	SMTPPort                                                                       int
	// Function limits (api.FunctionLimits); 0 = default.
	MaxFunctionTimeout time.Duration
	MaxFunctionMemory  int64
	// MaxFunctionConcurrency bounds one project's executions on a node.
	MaxFunctionConcurrency int
	// ExecutionRetention keeps execution records this long (0: forever);
	// ExecutionRetentionSweep is the cron of the sweep.
	ExecutionRetention      time.Duration
	ExecutionRetentionSweep string
	// FunctionFetchAllow lists private hosts or CIDRs functions' fetch may
	// reach (SSRF protection blocks them otherwise).
	FunctionFetchAllow string
	// WebhookAllow lists private hosts or CIDRs webhooks may deliver to;
	// WebhookMaxBackoff bounds the wait between attempts at one event.
	WebhookAllow      string
	WebhookMaxBackoff time.Duration
	WebhookPauseAfter int
	// WebhookDeliveryRecords is how many delivery records the read model
	// keeps per webhook.
	WebhookDeliveryRecords int
	// ListCache bounds the cache of ranked index ranges in bytes; 0 = off.
	ListCache int64
	// DocumentCache bounds the cache of documents read by id in bytes;
	// 0 = off.
	DocumentCache int64
	// SweepEvery is the storage sweeper's pause.
	SweepEvery time.Duration
	// SiteBlobGrace keeps unused site files this long before the sweeper
	// deletes them.
	SiteBlobGrace time.Duration
	// Realtime limits (api.RealtimeLimits); 0 = default.
	RealtimeBuffer, RealtimeMaxConnections int
	// Realtime fan-out budget (api.RealtimeLimits): deliveries per second
	// and burst per project, fan-out workers per node; 0 = default, -1 =
	// none.
	RealtimeDeliveryRate, RealtimeDeliveryBurst, RealtimeFanoutWorkers, RealtimeFanoutShare int
	PresenceTTL                                                                             time.Duration
	PresenceMaxMembers                                                                      int
	// DNSResolver ("host:port") answers custom domains' TXT challenges;
	// empty: the system resolver.
	DNSResolver string
	// Connection limits (connlimit.go): open connections per client
	// address, and how slowly a request body may arrive.
	MaxConnsPerAddr int
	BodyReadTimeout time.Duration
	MinBodyRate     int64
	// Memory (memory.go): Badger's memtables and caches, the Go runtime's
	// soft limit, and where profiles are served.
	BadgerMemtable, BadgerBlockCache, BadgerIndexCache int64
	BadgerMemtables                                    int
	MemoryLimit                                        int64
	GCPercent                                          int
	PprofAddr                                          string
}

// trustedProxies parses --trusted-proxies.
func (c *config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(c.TrustedProxies, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR or address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// defaultSync is the embedded JetStream fsync interval, chosen from the
// curve measured with 'cairn bench' (docs/operations.md, Durability).
var defaultSync = streams.DefaultSyncInterval.String()

func (c *config) flags(fs *pflag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.DataDir, "data-dir", env("CAIRN_DATA_DIR", "./cairn_data"), "data directory for JetStream, Badger and generated keys (CAIRN_DATA_DIR)")
	fs.StringVar(&c.HTTPAddr, "http-addr", env("CAIRN_HTTP_ADDR", ":8080"), "HTTP listen address for Connect, gRPC and gRPC-Web (CAIRN_HTTP_ADDR)")
	fs.StringVar(&c.NATSURL, "nats-url", env("CAIRN_NATS_URL", ""), "use this NATS server or cluster instead of the embedded one (CAIRN_NATS_URL)")
	fs.StringVar(&c.NATSCreds, "nats-creds", env("CAIRN_NATS_CREDS", ""), "NATS credentials file (user JWT and nkey seed) for --nats-url (CAIRN_NATS_CREDS)")
	fs.StringVar(&c.NATSNKey, "nats-nkey", env("CAIRN_NATS_NKEY", ""), "NATS nkey seed file for --nats-url (CAIRN_NATS_NKEY)")
	fs.StringVar(&c.NATSUser, "nats-user", env("CAIRN_NATS_USER", ""), "NATS user for --nats-url, with --nats-password or --nats-password-file (CAIRN_NATS_USER)")
	// Secrets from the environment are not shown as defaults in -h.
	c.NATSPassword = getenv("CAIRN_NATS_PASSWORD")
	fs.Var(hiddenString{&c.NATSPassword}, "nats-password", "NATS password of --nats-user; prefer --nats-password-file, flags show in ps (CAIRN_NATS_PASSWORD)")
	fs.StringVar(&c.NATSPasswordFile, "nats-password-file", env("CAIRN_NATS_PASSWORD_FILE", ""), "file holding the NATS password of --nats-user (CAIRN_NATS_PASSWORD_FILE)")
	c.NATSToken = getenv("CAIRN_NATS_TOKEN")
	fs.Var(hiddenString{&c.NATSToken}, "nats-token", "NATS authentication token; prefer --nats-token-file (CAIRN_NATS_TOKEN)")
	fs.StringVar(&c.NATSTokenFile, "nats-token-file", env("CAIRN_NATS_TOKEN_FILE", ""), "file holding the NATS authentication token (CAIRN_NATS_TOKEN_FILE)")
	fs.StringVar(&c.NATSCA, "nats-ca", env("CAIRN_NATS_CA", ""), "PEM CA certificates that sign the NATS servers' certificates; turns TLS on (CAIRN_NATS_CA)")
	fs.StringVar(&c.NATSCert, "nats-cert", env("CAIRN_NATS_CERT", ""), "PEM client certificate for NATS TLS, with --nats-key (CAIRN_NATS_CERT)")
	fs.StringVar(&c.NATSKey, "nats-key", env("CAIRN_NATS_KEY", ""), "PEM private key of --nats-cert (CAIRN_NATS_KEY)")
	fs.StringVar(&c.NATSServerName, "nats-server-name", env("CAIRN_NATS_SERVER_NAME", ""), "name the NATS servers' certificates must carry, when it differs from the --nats-url hosts; turns TLS on (CAIRN_NATS_SERVER_NAME)")
	fs.BoolVar(&c.NATSInsecure, "nats-insecure", getenv("CAIRN_NATS_INSECURE") == "true", "allow a non-loopback --nats-url without credentials (anyone reaching it reads every project's events) (CAIRN_NATS_INSECURE=true)")
	c.AdminKey, c.MasterKey = getenv("CAIRN_ADMIN_KEY"), getenv("CAIRN_MASTER_KEY")
	fs.Var(hiddenString{&c.AdminKey}, "admin-key", "operator credential; generated into the data directory when unset (CAIRN_ADMIN_KEY)")
	fs.Var(hiddenString{&c.MasterKey}, "master-key", "64 hex chars sealing instance secrets; generated into the data directory when unset; every node of a cluster needs the same (CAIRN_MASTER_KEY)")
	fs.StringVar(&c.Sync, "sync", env("CAIRN_SYNC", defaultSync), "embedded JetStream fsync: 'always' (before every ack) or an interval (CAIRN_SYNC)")
	fs.IntVar(&c.Replicas, "replicas", envInt(getenv, "CAIRN_REPLICAS"), "stream replicas in a NATS cluster; 0 = auto: 3 on a cluster of 3+ servers, else 1 (CAIRN_REPLICAS)")
	fs.StringVar(&c.PublicURL, "public-url", env("CAIRN_PUBLIC_URL", ""), "where clients reach this node, for URLs in answers; default from --http-addr (CAIRN_PUBLIC_URL)")
	fs.StringVar(&c.SitesDomain, "sites-domain", env("CAIRN_SITES_DOMAIN", "localhost"), "serve site S of project P at S.P.<this domain> (CAIRN_SITES_DOMAIN; *.localhost resolves to loopback in browsers and curl)")
	fs.StringVar(&c.DNSResolver, "dns-resolver", env("CAIRN_DNS_RESOLVER", ""), "host:port of the DNS server that answers custom domains' TXT challenges; default the system resolver (CAIRN_DNS_RESOLVER)")
	fs.StringVar(&c.LogLevel, "log-level", env("CAIRN_LOG_LEVEL", "info"), "debug, info, warn or error (CAIRN_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("CAIRN_LOG_FORMAT", ""), "json or text; default text on a terminal, else JSON (CAIRN_LOG_FORMAT)")
	fs.BoolVar(&c.RequestLog, "request-log", getenv("CAIRN_REQUEST_LOG") != "false", "log one line per request at info; off, at debug (CAIRN_REQUEST_LOG=false)")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", env("CAIRN_OTLP_ENDPOINT", ""), "send traces over OTLP/HTTP to this URL, e.g. http://localhost:4318; empty: no tracing (CAIRN_OTLP_ENDPOINT)")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", 1<<20, "largest request message accepted")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", env("CAIRN_TRUSTED_PROXIES", ""), "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client, for per-address rate limits (CAIRN_TRUSTED_PROXIES)")
	fs.IntVar(&c.MaxQueryLimit, "max-query-limit", envInt(getenv, "CAIRN_MAX_QUERY_LIMIT"), "largest page a document query may ask for; 0 = 100 (CAIRN_MAX_QUERY_LIMIT)")
	fs.IntVar(&c.MaxQueryScan, "max-query-scan", envInt(getenv, "CAIRN_MAX_QUERY_SCAN"), "documents one query may examine before failing with the index to create; 0 = 10000 (CAIRN_MAX_QUERY_SCAN)")
	fs.IntVar(&c.MaxBatchOperations, "max-batch-operations", envInt(getenv, "CAIRN_MAX_BATCH_OPERATIONS"), "documents one bulk call or transaction writes; 0 = 100, at most 900 (CAIRN_MAX_BATCH_OPERATIONS)")
	fs.Int64Var(&c.MaxTransactionBytes, "max-transaction-bytes", envInt64(getenv, "CAIRN_MAX_TRANSACTION_BYTES"), "bytes of document data one transaction may stage; 0 = 4 MiB (CAIRN_MAX_TRANSACTION_BYTES)")
	fs.Int64Var(&c.MaxProjectTransactionBytes, "max-project-transaction-bytes", envInt64(getenv, "CAIRN_MAX_PROJECT_TRANSACTION_BYTES"), "bytes of document data a project's open transactions may stage together; 0 = 32 MiB (CAIRN_MAX_PROJECT_TRANSACTION_BYTES)")
	fs.Int64Var(&c.MaxFileSize, "max-file-size", envInt64(getenv, "CAIRN_MAX_FILE_SIZE"), "largest file any bucket accepts, in bytes; 0 = 5 GiB (CAIRN_MAX_FILE_SIZE)")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", envInt64(getenv, "CAIRN_MAX_IMPORT_BYTES"), "largest package POST /v1/projects/import (cairn projects import) accepts, in bytes; 0 = 16 GiB (CAIRN_MAX_IMPORT_BYTES)")
	fs.Int64Var(&c.StorageQuota, "storage-quota", envInt64(getenv, "CAIRN_STORAGE_QUOTA"), "bytes of files a project may store unless its limits say otherwise; 0 = unlimited (CAIRN_STORAGE_QUOTA)")
	fs.DurationVar(&c.UploadExpiry, "upload-expiry", envDuration(getenv, "CAIRN_UPLOAD_EXPIRY", 24*time.Hour), "how long a chunked upload may wait for its next chunk before its bytes are deleted (CAIRN_UPLOAD_EXPIRY)")
	fs.DurationVar(&c.MaxFunctionTimeout, "max-function-timeout", envDuration(getenv, "CAIRN_MAX_FUNCTION_TIMEOUT", 15*time.Minute), "longest timeout a function may set (CAIRN_MAX_FUNCTION_TIMEOUT)")
	fs.Int64Var(&c.MaxFunctionMemory, "max-function-memory", envInt64(getenv, "CAIRN_MAX_FUNCTION_MEMORY"), "memory one execution may use, in bytes; 0 = 128 MiB (CAIRN_MAX_FUNCTION_MEMORY)")
	fs.IntVar(&c.MaxFunctionConcurrency, "max-function-concurrency", envInt(getenv, "CAIRN_MAX_FUNCTION_CONCURRENCY"), "executions of one project running at once on a node; 0 = 16 (CAIRN_MAX_FUNCTION_CONCURRENCY)")
	fs.DurationVar(&c.ExecutionRetention, "execution-retention", envDuration(getenv, "CAIRN_EXECUTION_RETENTION", 30*24*time.Hour), "how long execution records are kept; 0 = forever (CAIRN_EXECUTION_RETENTION)")
	fs.StringVar(&c.ExecutionRetentionSweep, "execution-retention-sweep", "@hourly", "cron of the sweep that expires execution records past the retention (once per period across the instance)")
	fs.StringVar(&c.FunctionFetchAllow, "function-fetch-allow", env("CAIRN_FUNCTION_FETCH_ALLOW", ""), "comma-separated private hosts, addresses or CIDRs functions may fetch; others private, loopback and link-local are refused (CAIRN_FUNCTION_FETCH_ALLOW)")
	fs.StringVar(&c.WebhookAllow, "webhook-allow", env("CAIRN_WEBHOOK_ALLOW", ""), "comma-separated private hosts, addresses or CIDRs webhooks may deliver to; others private, loopback and link-local are refused (CAIRN_WEBHOOK_ALLOW)")
	fs.DurationVar(&c.WebhookMaxBackoff, "webhook-max-backoff", time.Minute, "longest wait between two attempts at delivering one event to a webhook (the wait doubles from 1 s)")
	fs.IntVar(&c.WebhookPauseAfter, "webhook-pause-after", 0, "pause a webhook after this many failed delivery attempts in a row (its events wait until it is enabled again); 0 = never")
	fs.IntVar(&c.WebhookDeliveryRecords, "webhook-delivery-records", projections.DefaultWebhookDeliveryRecords, "delivery records kept per webhook in the read model, the newest (every attempt stays in the event log)")
	fs.Int64Var(&c.ListCache, "list-cache", envInt64Default(getenv, "CAIRN_LIST_CACHE", projections.DefaultRankingCacheBytes), "bytes of ranked matches (lists sorted in memory) and page documents kept for repeated lists, until the project's next write; 0 = off (CAIRN_LIST_CACHE)")
	fs.Int64Var(&c.DocumentCache, "document-cache", envInt64Default(getenv, "CAIRN_DOCUMENT_CACHE", projections.DefaultDocumentCacheBytes), "bytes of documents read by id kept for the next reads, until the next write to their collection; 0 = off (CAIRN_DOCUMENT_CACHE)")
	fs.DurationVar(&c.UsageFlushEvery, "usage-flush-every", 10*time.Second, "how often this node publishes its usage counters (egress, realtime) for GetProjectUsage; what a crash loses at most")
	fs.DurationVar(&c.SweepEvery, "storage-sweep-every", 30*time.Second, "pause between sweeps that abandon expired uploads and delete the bytes of deleted files")
	fs.DurationVar(&c.SiteBlobGrace, "site-file-grace", envDuration(getenv, "CAIRN_SITE_FILE_GRACE", time.Hour), "how long an uploaded site file no deployment uses (an interrupted or refused deploy, a deleted deployment) is kept before it is deleted (CAIRN_SITE_FILE_GRACE)")
	fs.IntVar(&c.RealtimeBuffer, "realtime-buffer", envInt(getenv, "CAIRN_REALTIME_BUFFER"), "events one realtime subscriber may have queued before it is cut off as a slow consumer; 0 = 1024 (CAIRN_REALTIME_BUFFER)")
	fs.IntVar(&c.RealtimeDeliveryRate, "realtime-delivery-rate", envInt(getenv, "CAIRN_REALTIME_DELIVERY_RATE"), "realtime deliveries (an event to one subscriber) per second each project may make on this node, unless its limits set realtime_deliveries_per_second; over it events reach subscribers later, never fewer; 0 = 100000 per core, -1 = no budget (CAIRN_REALTIME_DELIVERY_RATE)")
	fs.IntVar(&c.RealtimeDeliveryBurst, "realtime-delivery-burst", envInt(getenv, "CAIRN_REALTIME_DELIVERY_BURST"), "realtime deliveries a project may make at once above its rate; 0 = two seconds of the rate (CAIRN_REALTIME_DELIVERY_BURST)")
	fs.IntVar(&c.RealtimeFanoutWorkers, "realtime-fanout-workers", envInt(getenv, "CAIRN_REALTIME_FANOUT_WORKERS"), "goroutines fanning realtime events out at once on this node, taken in turn by projects; 0 = one fewer than the cores (at least 1), -1 = no bound (CAIRN_REALTIME_FANOUT_WORKERS)")
	fs.IntVar(&c.RealtimeFanoutShare, "realtime-fanout-share", envInt(getenv, "CAIRN_REALTIME_FANOUT_SHARE"), "percent of a fan-out worker's time one project's realtime fan-out may take while other projects make calls (it pauses for the rest); 0 = 50, 100 = no pause (CAIRN_REALTIME_FANOUT_SHARE)")
	fs.IntVar(&c.RealtimeMaxConnections, "realtime-max-connections", envInt(getenv, "CAIRN_REALTIME_MAX_CONNECTIONS"), "realtime subscriptions of one project on one node; 0 = 20000 (CAIRN_REALTIME_MAX_CONNECTIONS)")
	fs.DurationVar(&c.PresenceTTL, "presence-ttl", envDuration(getenv, "CAIRN_PRESENCE_TTL", 30*time.Second), "how long a realtime presence member outlives a node that died without saying so; every node should use the same (CAIRN_PRESENCE_TTL)")
	fs.IntVar(&c.PresenceMaxMembers, "presence-max-members", envInt(getenv, "CAIRN_PRESENCE_MAX_MEMBERS"), "realtime presence members of one channel, across all nodes; 0 = 1000 (CAIRN_PRESENCE_MAX_MEMBERS)")
	fs.BoolVar(&c.MetricsProjectLabels, "metrics-project-labels", getenv("CAIRN_METRICS_PROJECT_LABELS") == "true", "label projection metrics with each project's stream (project ids) instead of summing them (CAIRN_METRICS_PROJECT_LABELS=true)")
	fs.IntVar(&c.MaxConnsPerAddr, "max-connections-per-address", envIntDefault(getenv, "CAIRN_MAX_CONNECTIONS_PER_ADDRESS", defaultMaxConnsPerAddr), "open connections one client address may hold (trusted proxies exempt); 0 = no limit (CAIRN_MAX_CONNECTIONS_PER_ADDRESS)")
	fs.DurationVar(&c.BodyReadTimeout, "body-read-timeout", envDuration(getenv, "CAIRN_BODY_READ_TIMEOUT", defaultBodyReadTimeout), "longest wait for the next byte of a request body, and the grace before --min-body-rate applies; 0 = none (CAIRN_BODY_READ_TIMEOUT)")
	fs.Int64Var(&c.MinBodyRate, "min-body-rate", envInt64Default(getenv, "CAIRN_MIN_BODY_RATE", defaultMinBodyRate), "bytes/s a request body must average after --body-read-timeout; 0 = none (CAIRN_MIN_BODY_RATE)")
	fs.Int64Var(&c.BadgerMemtable, "badger-memtable", envInt64(getenv, "CAIRN_BADGER_MEMTABLE"), "bytes of one read-model memtable (Badger), at least 8 MiB; its largest transaction is 15% of it; 0 = 16 MiB (CAIRN_BADGER_MEMTABLE)")
	fs.IntVar(&c.BadgerMemtables, "badger-memtables", envInt(getenv, "CAIRN_BADGER_MEMTABLES"), "read-model memtables in memory: the one written and those waiting for their flush; 0 = 3 (CAIRN_BADGER_MEMTABLES)")
	fs.Int64Var(&c.BadgerBlockCache, "badger-block-cache", envInt64(getenv, "CAIRN_BADGER_BLOCK_CACHE"), "bytes of read-model blocks cached in memory; 0 = 32 MiB (CAIRN_BADGER_BLOCK_CACHE)")
	fs.Int64Var(&c.BadgerIndexCache, "badger-index-cache", envInt64(getenv, "CAIRN_BADGER_INDEX_CACHE"), "bytes of read-model table indexes and bloom filters cached in memory; 0 = 16 MiB; -1 = all of them in memory, unbounded (CAIRN_BADGER_INDEX_CACHE)")
	memoryLimit := int64(defaultMemoryLimit)
	if getenv("GOMEMLIMIT") != "" {
		memoryLimit = 0 // the operator set the runtime's own
	}
	fs.Int64Var(&c.MemoryLimit, "memory-limit", envInt64Default(getenv, "CAIRN_MEMORY_LIMIT", memoryLimit), "floor of the Go runtime's soft memory limit in bytes; the limit is the larger of it and the live heap grown by twice --gc-percent, and a heap quiet for 2 s is collected; 0 = off (both), the default when GOMEMLIMIT is set (CAIRN_MEMORY_LIMIT)")
	gcPercent := defaultGCPercent
	if getenv("GOGC") != "" {
		gcPercent = 0 // the operator set the runtime's own
	}
	fs.IntVar(&c.GCPercent, "gc-percent", envIntDefault(getenv, "CAIRN_GC_PERCENT", gcPercent), "how far the Go heap grows past its live part before the next collection, in percent (the runtime's GOGC); 0 = the runtime's own (GOGC, or 100), the default when GOGC is set (CAIRN_GC_PERCENT)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("CAIRN_PPROF_ADDR", ""), "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; empty: off (CAIRN_PPROF_ADDR)")
	fs.DurationVar(&c.OperatorSessionTTL, "operator-session-ttl", envDuration(getenv, "CAIRN_OPERATOR_SESSION_TTL", 12*time.Hour), "how long an operator account's sign-in (console, cairn login) lasts; applies to new sessions, between 5m and 720h (CAIRN_OPERATOR_SESSION_TTL)")
	fs.StringVar(&c.SMTPHost, "smtp-host", env("CAIRN_SMTP_HOST", ""), "the instance's SMTP server, for operator invitations (projects' mail has its own settings); unset: the link is shown to whoever invites (CAIRN_SMTP_HOST)")
	fs.IntVar(&c.SMTPPort, "smtp-port", envInt(getenv, "CAIRN_SMTP_PORT"), "port of --smtp-host; 0 = 587 for starttls, 465 for tls, 25 for none (CAIRN_SMTP_PORT)")
	fs.StringVar(&c.SMTPSecurity, "smtp-security", env("CAIRN_SMTP_SECURITY", "starttls"), "starttls, tls or none (local development only) (CAIRN_SMTP_SECURITY)")
	fs.StringVar(&c.SMTPUsername, "smtp-username", env("CAIRN_SMTP_USERNAME", ""), "SMTP AUTH user of --smtp-host (CAIRN_SMTP_USERNAME)")
	c.SMTPPassword = getenv("CAIRN_SMTP_PASSWORD")
	fs.Var(hiddenString{&c.SMTPPassword}, "smtp-password", "SMTP AUTH password of --smtp-username; prefer the environment, flags show in ps (CAIRN_SMTP_PASSWORD)")
	fs.StringVar(&c.SMTPSender, "smtp-sender", env("CAIRN_SMTP_SENDER", ""), "sender address of the instance's mail, required with --smtp-host (CAIRN_SMTP_SENDER)")
	fs.StringVar(&c.SMTPSenderName, "smtp-sender-name", env("CAIRN_SMTP_SENDER_NAME", "Cairn"), "sender name of the instance's mail (CAIRN_SMTP_SENDER_NAME)")
	fs.BoolVar(&c.NoAuthRateLimits, "no-auth-rate-limits", getenv("CAIRN_NO_AUTH_RATE_LIMITS") == "true", "turn off the sign-in, sign-up and token rate limits, for load tests (CAIRN_NO_AUTH_RATE_LIMITS=true)")
	c.NoFastUnary = getenv("CAIRN_FAST_UNARY") == "false"
	fs.Var(notBool{&c.NoFastUnary}, "fast-unary", "serve GetDocument, ListDocuments and CreateDocument's plain Connect requests on the lean unary path (same answers, less CPU); false = through connect-go's handler, as every other call (CAIRN_FAST_UNARY=false)")
	fs.Lookup("fast-unary").NoOptDefVal = "true"
	fs.IntVar(&c.ProjectRate, "project-rate", envInt(getenv, "CAIRN_PROJECT_RATE"), "requests per second each project's keys and sessions (and, apart, its guests) may make on this node, unless the project's limits set requests_per_second; 0 = 20000, -1 = no limit (CAIRN_PROJECT_RATE)")
	fs.IntVar(&c.ProjectBurst, "project-burst", envInt(getenv, "CAIRN_PROJECT_BURST"), "requests a project's callers may make at once above --project-rate, unless the project's limits set request_burst; 0 = 40000 (CAIRN_PROJECT_BURST)")
	fs.IntVar(&c.ProjectConcurrency, "project-concurrency", envInt(getenv, "CAIRN_PROJECT_CONCURRENCY"), "calls each project's keys and sessions (and, apart, its guests) may have running at once on this node, unless the project's limits set max_concurrent_requests; more wait in line (up to 10 s); 0 = 32 per core, at least 64, -1 = no bound (CAIRN_PROJECT_CONCURRENCY)")
}

// hiddenString is a string flag whose value (a secret, possibly from the
// environment) never appears as a default in -h.
// notBool is a boolean flag stored as its negation, so that a config's
// zero value means the flag's default, true.
type notBool struct{ p *bool }

func (b notBool) String() string { return strconv.FormatBool(b.p == nil || !*b.p) }
func (b notBool) Type() string   { return "bool" }
func (b notBool) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b.p = !on
	return nil
}

type hiddenString struct{ p *string }

func (h hiddenString) String() string { return "" }

func (h hiddenString) Type() string { return "string" }

func (h hiddenString) Set(v string) error {
	*h.p = v
	return nil
}

func envInt64(getenv func(string) string, name string) int64 {
	n, _ := strconv.ParseInt(getenv(name), 10, 64)
	return n
}

func envDuration(getenv func(string) string, name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(getenv(name)); err == nil {
		return d
	}
	return def
}

// envIntDefault and envInt64Default read a number whose unset default
// is not 0 (an explicit 0 turns the limit off).
func envIntDefault(getenv func(string) string, name string, def int) int {
	if n, err := strconv.Atoi(getenv(name)); err == nil {
		return n
	}
	return def
}

func envInt64Default(getenv func(string) string, name string, def int64) int64 {
	if n, err := strconv.ParseInt(getenv(name), 10, 64); err == nil {
		return n
	}
	return def
}

func envInt(getenv func(string) string, name string) int {
	n, _ := strconv.Atoi(getenv(name))
	return n
}

// systemMail is the instance's SMTP server; nil without --smtp-host.
func (c *config) systemMail() (*mail.Config, error) {
	if c.SMTPHost == "" {
		return nil, nil
	}
	sec := mail.Security(c.SMTPSecurity)
	if sec != mail.SecuritySTARTTLS && sec != mail.SecurityTLS && sec != mail.SecurityNone {
		return nil, fmt.Errorf("--smtp-security: want starttls, tls or none, got %q", c.SMTPSecurity)
	}
	if !strings.Contains(c.SMTPSender, "@") {
		return nil, fmt.Errorf("--smtp-sender: want the sender's email address with --smtp-host, got %q", c.SMTPSender)
	}
	return &mail.Config{Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername, Password: c.SMTPPassword,
		SenderEmail: c.SMTPSender, SenderName: c.SMTPSenderName, Security: sec}, nil
}

// syncMode parses --sync.
func (c *config) syncMode() (always bool, interval time.Duration, err error) {
	if c.Sync == "always" {
		return true, 0, nil
	}
	d, err := time.ParseDuration(c.Sync)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("--sync: want 'always' or a positive duration such as 100ms, got %q", c.Sync)
	}
	return false, d, nil
}

// secretFile returns the secret in path, generating it (mode 0600) when
// missing. created tells the caller to show a new secret once.
func secretFile(path, prefix string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	secret = prefix + hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := io.WriteString(f, secret+"\n"); err != nil {
		f.Close()
		return "", false, err
	}
	return secret, true, f.Close()
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return "cairn " + bi.Main.Version
	}
	return "cairn (devel)"
}

// minAdminKeyBits is the least entropy an operator key may have: it opens
// every project, and anyone may try it against the API.
const minAdminKeyBits = 128

// adminKeyBits estimates a key's entropy simply: its length (without the
// constant "cak_" prefix) times log2 of the smallest alphabet it fits:
// 4 bits a character for hex, 6 for base64 (either variant), log2(95) for
// anything else (printable ASCII). So 32 hex or 22 base64 characters are
// enough. It cannot tell a random key from "aaaa…"; it refuses the short
// ones, which is what a typo or a placeholder is.
func adminKeyBits(key string) float64 {
	key = strings.TrimPrefix(key, "cak_")
	allHex, b64 := true, true
	for _, c := range key {
		isHex := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		allHex = allHex && isHex
		b64 = b64 && (isHex || c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || strings.ContainsRune("+/=-_", c))
	}
	n := float64(len(key))
	switch {
	case allHex:
		return n * 4
	case b64:
		return n * 6
	}
	return n * math.Log2(95)
}

// checkAdminKey refuses a weak operator key, naming where it came from.
func checkAdminKey(key, source string) error {
	if bits := adminKeyBits(key); bits < minAdminKeyBits {
		unit := "characters"
		if len(key) == 1 {
			unit = "character"
		}
		return fmt.Errorf("%s is %d %s (about %d bits): an admin key needs at least %d bits (e.g. 32 hex characters; `openssl rand -hex 32`)",
			source, len(key), unit, int(bits), minAdminKeyBits)
	}
	return nil
}

// requestLogLevel is where --request-log puts the per-request line: off,
// it is still there for --log-level debug.
func (c *config) requestLogLevel() slog.Level {
	if c.RequestLog {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
