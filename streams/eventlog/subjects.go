package eventlog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// Aggregate names one resource's events: the stream they live in and the
// subject filter that covers them all (the expected-sequence subject).
type Aggregate struct {
	Stream string
	Filter string
}

// ProjectAggregate is the registry entry of a project, in the system stream.
func ProjectAggregate(project string) Aggregate {
	return Aggregate{Stream: streams.SystemStream, Filter: streams.SystemSubject("projects", project, ">")}
}

// OperatorAggregate is an operator account with its sessions, in the
// system stream.
func OperatorAggregate(id string) Aggregate {
	return Aggregate{Stream: streams.SystemStream, Filter: streams.SystemSubject("operators", id, ">")}
}

func operatorSubject(o *eventsv1.Operator, rest ...string) string {
	return streams.SystemSubject(append([]string{"operators", o.GetId()}, rest...)...)
}

// KeyAggregate is one API key of a project.
func KeyAggregate(project, key string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "keys", key, ">")}
}

// SiteAggregate is a site with its deployments: one aggregate, so that
// activation and deletion decide on the site's whole deployment list.
func SiteAggregate(project, site string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "sites", site, ">")}
}

// TeamAggregate is one team: its own events only (cairn.<p>.teams.<t>.*,
// one token), so that each membership under it is a separate aggregate.
func TeamAggregate(project, team string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "teams", team, "*")}
}

// MembershipAggregate is one membership of a team.
func MembershipAggregate(project, team, membership string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "teams", team, "memberships", membership, "*")}
}

// DomainAggregate is the instance-wide claim on a custom domain, in the
// system stream. Domain labels never hold '_', so dots become '_' to make
// one subject token.
func DomainAggregate(domain string) Aggregate {
	return Aggregate{Stream: streams.SystemStream, Filter: streams.SystemSubject("domains", domainToken(domain), ">")}
}

func domainToken(domain string) string { return strings.ReplaceAll(domain, ".", "_") }

// UserAggregate is an end user with their sessions and tokens.
func UserAggregate(project, user string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "users", user, ">")}
}

// AuthSettingsAggregate is a project's authentication settings.
func AuthSettingsAggregate(project string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "auth", "settings", ">")}
}

// ClaimAggregate is one unique value of a namespace in a project (an email):
// the value is hashed into one subject token, which also keeps addresses
// out of subject names.
func ClaimAggregate(project, namespace, value string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "claims", namespace, ClaimToken(namespace, value), ">")}
}

// ClaimToken is the subject token (and read-model key) of a claimed value.
func ClaimToken(namespace, value string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + value))
	return hex.EncodeToString(sum[:16])
}

// DatabaseAggregate is a database's own events (cairn.<p>.databases.<db>.*,
// one token: its collections are aggregates of their own).
func DatabaseAggregate(project, db string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "databases", db, "*")}
}

// CollectionAggregate is a collection with its schema: every schema change
// is one token after the collection id, so the filter excludes the
// documents below it.
func CollectionAggregate(project, db, coll string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "databases", db, "collections", coll, "*")}
}

// DocumentAggregate is one document.
func DocumentAggregate(project, db, coll, doc string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "databases", db, "collections", coll, "documents", doc, "*")}
}

// TransactionAggregate is one database transaction.
func TransactionAggregate(project, tx string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "transactions", tx, "*")}
}

// BucketAggregate is a bucket's own events (one token: its files are
// aggregates of their own).
func BucketAggregate(project, bucket string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "buckets", bucket, "*")}
}

// FileAggregate is one file from its first uploaded chunk to its deletion
// (upload, abandon, create, update, delete); its tokens are below it.
func FileAggregate(project, bucket, file string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "buckets", bucket, "files", file, "*")}
}

// FileTokenAggregate is one file token.
func FileTokenAggregate(project, bucket, file, token string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "buckets", bucket, "files", file, "tokens", token, "*")}
}

func bucketSubject(b *eventsv1.Bucket, verb string) string {
	return streams.ProjectSubject(b.GetProjectId(), "buckets", b.GetId(), verb)
}

func fileSubject(f *eventsv1.File, verb string) string {
	return streams.ProjectSubject(f.GetProjectId(), "buckets", f.GetBucketId(), "files", f.GetId(), verb)
}

func fileTokenSubject(t *eventsv1.FileToken, verb string) string {
	return streams.ProjectSubject(t.GetProjectId(), "buckets", t.GetBucketId(), "files", t.GetFileId(), "tokens", t.GetId(), verb)
}

// FunctionAggregate is a function's own events (its deployments and
// executions are aggregates of their own below it).
func FunctionAggregate(project, fn string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "functions", fn, "*")}
}

// FunctionDeploymentAggregate is one deployment of a function.
func FunctionDeploymentAggregate(project, fn, deployment string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "functions", fn, "deployments", deployment, "*")}
}

// WebhookAggregate is one webhook: its own events only
// (cairn.<p>.webhooks.<w>.*), so each delivery record is another aggregate.
func WebhookAggregate(project, webhook string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "webhooks", webhook, "*")}
}

// WebhookDeliveryAggregate is one delivery attempt of a webhook.
func WebhookDeliveryAggregate(project, webhook, delivery string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "webhooks", webhook, "deliveries", delivery, "*")}
}

// ExecutionAggregate is one execution of a function.
func ExecutionAggregate(project, fn, execution string) Aggregate {
	return Aggregate{Stream: streams.ProjectStream(project), Filter: streams.ProjectSubject(project, "functions", fn, "executions", execution, "*")}
}

func collectionSubject(c *eventsv1.Collection, verb string) string {
	return streams.ProjectSubject(c.GetProjectId(), "databases", c.GetDatabaseId(), "collections", c.GetId(), verb)
}

func documentSubject(d *eventsv1.Document, verb string) string {
	return streams.ProjectSubject(d.GetProjectId(), "databases", d.GetDatabaseId(), "collections", d.GetCollectionId(), "documents", d.GetId(), verb)
}

func userSubject(u *eventsv1.User, rest ...string) string {
	return streams.ProjectSubject(u.GetProjectId(), append([]string{"users", u.GetId()}, rest...)...)
}

// Subject returns the subject an event is stored under, following
// Appwrite's event names. Stored names: only ever add cases.
func Subject(env *eventsv1.Envelope) (string, error) {
	switch p := env.GetPayload().(type) {
	case *eventsv1.Envelope_ProjectCreated:
		return streams.SystemSubject("projects", p.ProjectCreated.GetProject().GetId(), "create"), nil
	case *eventsv1.Envelope_ProjectUpdated:
		return streams.SystemSubject("projects", p.ProjectUpdated.GetProject().GetId(), "update"), nil
	case *eventsv1.Envelope_ProjectDeleted:
		return streams.SystemSubject("projects", p.ProjectDeleted.GetProject().GetId(), "delete"), nil
	case *eventsv1.Envelope_KeyCreated:
		k := p.KeyCreated.GetKey()
		return streams.ProjectSubject(k.GetProjectId(), "keys", k.GetId(), "create"), nil
	case *eventsv1.Envelope_KeyUpdated:
		k := p.KeyUpdated.GetKey()
		return streams.ProjectSubject(k.GetProjectId(), "keys", k.GetId(), "update"), nil
	case *eventsv1.Envelope_KeyDeleted:
		k := p.KeyDeleted.GetKey()
		return streams.ProjectSubject(k.GetProjectId(), "keys", k.GetId(), "delete"), nil
	case *eventsv1.Envelope_SiteCreated:
		s := p.SiteCreated.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "create"), nil
	case *eventsv1.Envelope_SiteUpdated:
		s := p.SiteUpdated.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "update"), nil
	case *eventsv1.Envelope_SiteDeleted:
		s := p.SiteDeleted.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "delete"), nil
	case *eventsv1.Envelope_DeploymentCreated:
		s := p.DeploymentCreated.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "deployments", p.DeploymentCreated.GetDeployment().GetId(), "create"), nil
	case *eventsv1.Envelope_DeploymentActivated:
		s := p.DeploymentActivated.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "deployments", p.DeploymentActivated.GetDeploymentId(), "activate"), nil
	case *eventsv1.Envelope_DeploymentFailed:
		s := p.DeploymentFailed.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "deployments", p.DeploymentFailed.GetDeployment().GetId(), "fail"), nil
	case *eventsv1.Envelope_DeploymentDeleted:
		s := p.DeploymentDeleted.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "deployments", p.DeploymentDeleted.GetDeployment().GetId(), "delete"), nil
	case *eventsv1.Envelope_SiteDomainVerified:
		s := p.SiteDomainVerified.GetSite()
		return streams.ProjectSubject(s.GetProjectId(), "sites", s.GetId(), "domains", domainToken(p.SiteDomainVerified.GetDomain()), "verify"), nil
	case *eventsv1.Envelope_TeamCreated:
		t := p.TeamCreated.GetTeam()
		return streams.ProjectSubject(t.GetProjectId(), "teams", t.GetId(), "create"), nil
	case *eventsv1.Envelope_TeamUpdated:
		t := p.TeamUpdated.GetTeam()
		return streams.ProjectSubject(t.GetProjectId(), "teams", t.GetId(), "update"), nil
	case *eventsv1.Envelope_TeamDeleted:
		t := p.TeamDeleted.GetTeam()
		return streams.ProjectSubject(t.GetProjectId(), "teams", t.GetId(), "delete"), nil
	case *eventsv1.Envelope_MembershipCreated:
		m := p.MembershipCreated.GetMembership()
		return streams.ProjectSubject(m.GetProjectId(), "teams", m.GetTeamId(), "memberships", m.GetId(), "create"), nil
	case *eventsv1.Envelope_MembershipUpdated:
		m := p.MembershipUpdated.GetMembership()
		return streams.ProjectSubject(m.GetProjectId(), "teams", m.GetTeamId(), "memberships", m.GetId(), "update"), nil
	case *eventsv1.Envelope_MembershipDeleted:
		m := p.MembershipDeleted.GetMembership()
		return streams.ProjectSubject(m.GetProjectId(), "teams", m.GetTeamId(), "memberships", m.GetId(), "delete"), nil
	case *eventsv1.Envelope_DomainClaimed:
		return streams.SystemSubject("domains", domainToken(p.DomainClaimed.GetDomain()), "claim"), nil
	case *eventsv1.Envelope_DomainReleased:
		return streams.SystemSubject("domains", domainToken(p.DomainReleased.GetDomain()), "release"), nil
	case *eventsv1.Envelope_UserCreated:
		return userSubject(p.UserCreated.GetUser(), "create"), nil
	case *eventsv1.Envelope_UserUpdated:
		change := p.UserUpdated.GetChange()
		if change == "" || strings.ContainsAny(change, ".*> ") {
			return "", fmt.Errorf("user update with bad change name %q", change)
		}
		return userSubject(p.UserUpdated.GetUser(), "update", change), nil
	case *eventsv1.Envelope_UserDeleted:
		return userSubject(p.UserDeleted.GetUser(), "delete"), nil
	case *eventsv1.Envelope_SessionCreated:
		return userSubject(p.SessionCreated.GetUser(), "sessions", p.SessionCreated.GetSessionId(), "create"), nil
	case *eventsv1.Envelope_SessionUpdated:
		return userSubject(p.SessionUpdated.GetUser(), "sessions", p.SessionUpdated.GetSessionId(), "update"), nil
	case *eventsv1.Envelope_SessionsDeleted:
		// One session: its own subject, as Appwrite names it; several: the
		// user's sessions as a whole.
		if ids := p.SessionsDeleted.GetSessionIds(); len(ids) == 1 {
			return userSubject(p.SessionsDeleted.GetUser(), "sessions", ids[0], "delete"), nil
		}
		return userSubject(p.SessionsDeleted.GetUser(), "sessions", "delete"), nil
	case *eventsv1.Envelope_TokenCreated:
		return userSubject(p.TokenCreated.GetUser(), "tokens", p.TokenCreated.GetTokenId(), "create"), nil
	case *eventsv1.Envelope_TokenConsumed:
		return userSubject(p.TokenConsumed.GetUser(), "tokens", p.TokenConsumed.GetTokenId(), "update"), nil
	case *eventsv1.Envelope_PasskeyRegistered:
		return userSubject(p.PasskeyRegistered.GetUser(), "passkeys", p.PasskeyRegistered.GetPasskeyId(), "create"), nil
	case *eventsv1.Envelope_PasskeyRemoved:
		return userSubject(p.PasskeyRemoved.GetUser(), "passkeys", p.PasskeyRemoved.GetPasskey().GetId(), "delete"), nil
	case *eventsv1.Envelope_PasskeyUsed:
		return userSubject(p.PasskeyUsed.GetUser(), "passkeys", p.PasskeyUsed.GetPasskeyId(), "update"), nil
	case *eventsv1.Envelope_ClaimTaken:
		c := p.ClaimTaken
		return streams.ProjectSubject(c.GetProjectId(), "claims", c.GetNamespace(), ClaimToken(c.GetNamespace(), c.GetValue()), "take"), nil
	case *eventsv1.Envelope_ClaimReleased:
		c := p.ClaimReleased
		return streams.ProjectSubject(c.GetProjectId(), "claims", c.GetNamespace(), ClaimToken(c.GetNamespace(), c.GetValue()), "release"), nil
	case *eventsv1.Envelope_AuthSettingsUpdated:
		return streams.ProjectSubject(p.AuthSettingsUpdated.GetSettings().GetProjectId(), "auth", "settings", "update"), nil
	case *eventsv1.Envelope_DatabaseCreated:
		d := p.DatabaseCreated.GetDatabase()
		return streams.ProjectSubject(d.GetProjectId(), "databases", d.GetId(), "create"), nil
	case *eventsv1.Envelope_DatabaseUpdated:
		d := p.DatabaseUpdated.GetDatabase()
		return streams.ProjectSubject(d.GetProjectId(), "databases", d.GetId(), "update"), nil
	case *eventsv1.Envelope_DatabaseDeleted:
		d := p.DatabaseDeleted.GetDatabase()
		return streams.ProjectSubject(d.GetProjectId(), "databases", d.GetId(), "delete"), nil
	case *eventsv1.Envelope_CollectionCreated:
		return collectionSubject(p.CollectionCreated.GetCollection(), "create"), nil
	case *eventsv1.Envelope_CollectionUpdated:
		return collectionSubject(p.CollectionUpdated.GetCollection(), "update"), nil
	case *eventsv1.Envelope_CollectionDeleted:
		return collectionSubject(p.CollectionDeleted.GetCollection(), "delete"), nil
	case *eventsv1.Envelope_AttributeCreated:
		return collectionSubject(p.AttributeCreated.GetCollection(), "update"), nil
	case *eventsv1.Envelope_AttributeDeleted:
		return collectionSubject(p.AttributeDeleted.GetCollection(), "update"), nil
	case *eventsv1.Envelope_IndexCreated:
		return collectionSubject(p.IndexCreated.GetCollection(), "update"), nil
	case *eventsv1.Envelope_IndexUpdated:
		return collectionSubject(p.IndexUpdated.GetCollection(), "update"), nil
	case *eventsv1.Envelope_IndexDeleted:
		return collectionSubject(p.IndexDeleted.GetCollection(), "update"), nil
	case *eventsv1.Envelope_DocumentCreated:
		return documentSubject(p.DocumentCreated.GetDocument(), "create"), nil
	case *eventsv1.Envelope_DocumentUpdated:
		return documentSubject(p.DocumentUpdated.GetDocument(), "update"), nil
	case *eventsv1.Envelope_DocumentDeleted:
		return documentSubject(p.DocumentDeleted.GetDocument(), "delete"), nil
	case *eventsv1.Envelope_TransactionCreated:
		t := p.TransactionCreated.GetTransaction()
		return streams.ProjectSubject(t.GetProjectId(), "transactions", t.GetId(), "create"), nil
	case *eventsv1.Envelope_TransactionStaged:
		t := p.TransactionStaged.GetTransaction()
		return streams.ProjectSubject(t.GetProjectId(), "transactions", t.GetId(), "stage"), nil
	case *eventsv1.Envelope_TransactionCommitted:
		t := p.TransactionCommitted.GetTransaction()
		return streams.ProjectSubject(t.GetProjectId(), "transactions", t.GetId(), "commit"), nil
	case *eventsv1.Envelope_TransactionRolledBack:
		t := p.TransactionRolledBack.GetTransaction()
		return streams.ProjectSubject(t.GetProjectId(), "transactions", t.GetId(), "rollback"), nil
	case *eventsv1.Envelope_BucketCreated:
		return bucketSubject(p.BucketCreated.GetBucket(), "create"), nil
	case *eventsv1.Envelope_BucketUpdated:
		return bucketSubject(p.BucketUpdated.GetBucket(), "update"), nil
	case *eventsv1.Envelope_BucketDeleted:
		return bucketSubject(p.BucketDeleted.GetBucket(), "delete"), nil
	case *eventsv1.Envelope_UploadProgressed:
		return fileSubject(p.UploadProgressed.GetUpload().GetFile(), "upload"), nil
	case *eventsv1.Envelope_UploadAbandoned:
		return fileSubject(p.UploadAbandoned.GetUpload().GetFile(), "abandon"), nil
	case *eventsv1.Envelope_FileCreated:
		return fileSubject(p.FileCreated.GetFile(), "create"), nil
	case *eventsv1.Envelope_FileUpdated:
		return fileSubject(p.FileUpdated.GetFile(), "update"), nil
	case *eventsv1.Envelope_FileDeleted:
		return fileSubject(p.FileDeleted.GetFile(), "delete"), nil
	case *eventsv1.Envelope_FileTokenCreated:
		return fileTokenSubject(p.FileTokenCreated.GetToken(), "create"), nil
	case *eventsv1.Envelope_FileTokenDeleted:
		return fileTokenSubject(p.FileTokenDeleted.GetToken(), "delete"), nil
	case *eventsv1.Envelope_FunctionCreated:
		f := p.FunctionCreated.GetFunction()
		return streams.ProjectSubject(f.GetProjectId(), "functions", f.GetId(), "create"), nil
	case *eventsv1.Envelope_FunctionUpdated:
		f := p.FunctionUpdated.GetFunction()
		return streams.ProjectSubject(f.GetProjectId(), "functions", f.GetId(), "update"), nil
	case *eventsv1.Envelope_FunctionDeleted:
		f := p.FunctionDeleted.GetFunction()
		return streams.ProjectSubject(f.GetProjectId(), "functions", f.GetId(), "delete"), nil
	case *eventsv1.Envelope_FunctionDeploymentCreated:
		d := p.FunctionDeploymentCreated.GetDeployment()
		return streams.ProjectSubject(d.GetProjectId(), "functions", d.GetFunctionId(), "deployments", d.GetId(), "create"), nil
	case *eventsv1.Envelope_FunctionDeploymentDeleted:
		d := p.FunctionDeploymentDeleted.GetDeployment()
		return streams.ProjectSubject(d.GetProjectId(), "functions", d.GetFunctionId(), "deployments", d.GetId(), "delete"), nil
	case *eventsv1.Envelope_ExecutionCreated:
		e := p.ExecutionCreated.GetExecution()
		return streams.ProjectSubject(e.GetProjectId(), "functions", e.GetFunctionId(), "executions", e.GetId(), "create"), nil
	case *eventsv1.Envelope_ExecutionsExpired:
		f := p.ExecutionsExpired.GetFunction()
		return streams.ProjectSubject(f.GetProjectId(), "functions", f.GetId(), "expire"), nil
	case *eventsv1.Envelope_ExecutionUpdated:
		e := p.ExecutionUpdated.GetExecution()
		return streams.ProjectSubject(e.GetProjectId(), "functions", e.GetFunctionId(), "executions", e.GetId(), "update"), nil
	case *eventsv1.Envelope_WebhookCreated:
		w := p.WebhookCreated.GetWebhook()
		return streams.ProjectSubject(w.GetProjectId(), "webhooks", w.GetId(), "create"), nil
	case *eventsv1.Envelope_WebhookUpdated:
		w := p.WebhookUpdated.GetWebhook()
		return streams.ProjectSubject(w.GetProjectId(), "webhooks", w.GetId(), "update"), nil
	case *eventsv1.Envelope_WebhookRedeliveryRequested:
		w := p.WebhookRedeliveryRequested.GetWebhook()
		return streams.ProjectSubject(w.GetProjectId(), "webhooks", w.GetId(), "redeliver"), nil
	case *eventsv1.Envelope_WebhookDeleted:
		w := p.WebhookDeleted.GetWebhook()
		return streams.ProjectSubject(w.GetProjectId(), "webhooks", w.GetId(), "delete"), nil
	case *eventsv1.Envelope_WebhookDelivered:
		d := p.WebhookDelivered.GetDelivery()
		return streams.ProjectSubject(d.GetProjectId(), "webhooks", d.GetWebhookId(), "deliveries", d.GetId(), "create"), nil
	case *eventsv1.Envelope_OperatorCreated:
		return operatorSubject(p.OperatorCreated.GetOperator(), "create"), nil
	case *eventsv1.Envelope_OperatorUpdated:
		return operatorSubject(p.OperatorUpdated.GetOperator(), "update"), nil
	case *eventsv1.Envelope_OperatorDeleted:
		return operatorSubject(p.OperatorDeleted.GetOperator(), "delete"), nil
	case *eventsv1.Envelope_OperatorSessionCreated:
		return operatorSubject(p.OperatorSessionCreated.GetOperator(), "sessions", p.OperatorSessionCreated.GetSessionId(), "create"), nil
	case *eventsv1.Envelope_OperatorSessionsDeleted:
		return operatorSubject(p.OperatorSessionsDeleted.GetOperator(), "sessions", "delete"), nil
	default:
		return "", fmt.Errorf("no subject for event payload %T", p)
	}
}
