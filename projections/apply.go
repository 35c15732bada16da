package projections

import (
	"context"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// marshal is the one encoding of stored read-model values: deterministic, so
// equal states store equal bytes and a rebuild compares byte for byte.
func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// apply writes one event's effect on the read models into txn. Every event
// type ever written must have a case here: an unknown one (from a newer
// build, or an empty payload) stops the projector rather than be skipped.
func (p *Projections) apply(ctx context.Context, txn *badger.Txn, sp keyspace, ev event) (effect, error) {
	if ev.doc != nil {
		if err := p.applyRawDocument(txn, sp, ev); err != nil {
			return effect{}, err
		}
		return effect{}, p.indexIdempotency(txn, sp, ev)
	}
	var (
		eff effect
		err error
	)
	switch pl := ev.env.GetPayload().(type) {
	case *eventsv1.Envelope_ProjectCreated:
		eff, err = p.applyProjectCreated(txn, sp, ev, pl.ProjectCreated.GetProject())
	case *eventsv1.Envelope_ProjectUpdated:
		err = p.applyProjectUpdated(txn, sp, ev, pl.ProjectUpdated.GetProject())
	case *eventsv1.Envelope_ProjectDeleted:
		eff, err = p.applyProjectDeleted(txn, sp, ev, pl.ProjectDeleted.GetProject())
	case *eventsv1.Envelope_OperatorCreated:
		err = p.applyOperator(txn, sp, ev, pl.OperatorCreated.GetOperator(), false)
	case *eventsv1.Envelope_OperatorUpdated:
		err = p.applyOperator(txn, sp, ev, pl.OperatorUpdated.GetOperator(), false)
	case *eventsv1.Envelope_OperatorDeleted:
		err = p.applyOperator(txn, sp, ev, pl.OperatorDeleted.GetOperator(), true)
	case *eventsv1.Envelope_OperatorSessionCreated:
		err = p.applyOperator(txn, sp, ev, pl.OperatorSessionCreated.GetOperator(), false)
	case *eventsv1.Envelope_OperatorSessionsDeleted:
		err = p.applyOperator(txn, sp, ev, pl.OperatorSessionsDeleted.GetOperator(), false)
	case *eventsv1.Envelope_OperatorInvited:
		err = p.applyOperator(txn, sp, ev, pl.OperatorInvited.GetOperator(), false)
	case *eventsv1.Envelope_OperatorInvitationAccepted:
		err = p.applyOperator(txn, sp, ev, pl.OperatorInvitationAccepted.GetOperator(), false)
	case *eventsv1.Envelope_OperatorInvitationRevoked:
		err = p.applyOperator(txn, sp, ev, pl.OperatorInvitationRevoked.GetOperator(), true)
	case *eventsv1.Envelope_WebhookCreated:
		err = p.applyWebhookPut(txn, sp, ev, pl.WebhookCreated.GetWebhook(), true)
	case *eventsv1.Envelope_WebhookUpdated:
		err = p.applyWebhookPut(txn, sp, ev, pl.WebhookUpdated.GetWebhook(), false)
	case *eventsv1.Envelope_WebhookRedeliveryRequested:
		err = p.applyWebhookPut(txn, sp, ev, pl.WebhookRedeliveryRequested.GetWebhook(), false)
	case *eventsv1.Envelope_WebhookDeleted:
		err = p.applyWebhookDeleted(txn, sp, ev, pl.WebhookDeleted.GetWebhook())
	case *eventsv1.Envelope_WebhookDelivered:
		err = p.applyWebhookDelivered(txn, sp, ev, pl.WebhookDelivered.GetDelivery())
	case *eventsv1.Envelope_KeyCreated:
		err = p.applyKeyPut(txn, sp, ev, pl.KeyCreated.GetKey())
	case *eventsv1.Envelope_KeyUpdated:
		err = p.applyKeyPut(txn, sp, ev, pl.KeyUpdated.GetKey())
	case *eventsv1.Envelope_KeyDeleted:
		err = p.applyKeyDeleted(txn, sp, ev, pl.KeyDeleted.GetKey())
	case *eventsv1.Envelope_SiteCreated:
		err = p.applySitePut(txn, sp, ev, pl.SiteCreated.GetSite())
	case *eventsv1.Envelope_SiteUpdated:
		err = p.applySitePut(txn, sp, ev, pl.SiteUpdated.GetSite())
	case *eventsv1.Envelope_SiteDeleted:
		err = p.applySiteDeleted(txn, sp, ev, pl.SiteDeleted.GetSite())
	case *eventsv1.Envelope_DeploymentCreated:
		err = p.applyDeploymentCreated(txn, sp, ev, pl.DeploymentCreated.GetSite(), pl.DeploymentCreated.GetDeployment())
	case *eventsv1.Envelope_DeploymentActivated:
		err = p.applySitePut(txn, sp, ev, pl.DeploymentActivated.GetSite())
	case *eventsv1.Envelope_DeploymentFailed:
		err = p.applyDeploymentCreated(txn, sp, ev, pl.DeploymentFailed.GetSite(), pl.DeploymentFailed.GetDeployment())
	case *eventsv1.Envelope_SiteDomainVerified:
		err = p.applySitePut(txn, sp, ev, pl.SiteDomainVerified.GetSite())
	case *eventsv1.Envelope_DeploymentDeleted:
		err = p.applyDeploymentDeleted(txn, sp, ev, pl.DeploymentDeleted.GetSite(), pl.DeploymentDeleted.GetDeployment())
	case *eventsv1.Envelope_DomainClaimed:
		err = p.applyDomainClaimed(txn, sp, ev, pl.DomainClaimed)
	case *eventsv1.Envelope_DomainReleased:
		err = p.applyDomainReleased(txn, sp, ev, pl.DomainReleased)
	case *eventsv1.Envelope_UserCreated:
		err = p.applyUser(txn, sp, ev, pl.UserCreated.GetUser(), false)
	case *eventsv1.Envelope_UserUpdated:
		err = p.applyUser(txn, sp, ev, pl.UserUpdated.GetUser(), false)
	case *eventsv1.Envelope_UserDeleted:
		err = p.applyUser(txn, sp, ev, pl.UserDeleted.GetUser(), true)
	case *eventsv1.Envelope_SessionCreated:
		err = p.applyUser(txn, sp, ev, pl.SessionCreated.GetUser(), false)
	case *eventsv1.Envelope_SessionUpdated:
		err = p.applyUser(txn, sp, ev, pl.SessionUpdated.GetUser(), false)
	case *eventsv1.Envelope_SessionsDeleted:
		err = p.applyUser(txn, sp, ev, pl.SessionsDeleted.GetUser(), false)
	case *eventsv1.Envelope_TokenCreated:
		err = p.applyUser(txn, sp, ev, pl.TokenCreated.GetUser(), false)
	case *eventsv1.Envelope_TokenConsumed:
		err = p.applyUser(txn, sp, ev, pl.TokenConsumed.GetUser(), false)
	case *eventsv1.Envelope_PasskeyRegistered:
		err = p.applyUser(txn, sp, ev, pl.PasskeyRegistered.GetUser(), false)
	case *eventsv1.Envelope_PasskeyRemoved:
		err = p.applyUser(txn, sp, ev, pl.PasskeyRemoved.GetUser(), false)
	case *eventsv1.Envelope_PasskeyUsed:
		err = p.applyUser(txn, sp, ev, pl.PasskeyUsed.GetUser(), false)
	case *eventsv1.Envelope_ClaimTaken:
		err = p.applyClaim(txn, sp, ev, pl.ClaimTaken, nil)
	case *eventsv1.Envelope_ClaimReleased:
		err = p.applyClaim(txn, sp, ev, nil, pl.ClaimReleased)
	case *eventsv1.Envelope_AuthSettingsUpdated:
		err = p.applyAuthSettings(txn, sp, ev, pl.AuthSettingsUpdated.GetSettings())
	case *eventsv1.Envelope_TeamCreated:
		err = p.applyTeamPut(txn, sp, ev, pl.TeamCreated.GetTeam())
	case *eventsv1.Envelope_TeamUpdated:
		err = p.applyTeamPut(txn, sp, ev, pl.TeamUpdated.GetTeam())
	case *eventsv1.Envelope_TeamDeleted:
		eff, err = p.applyTeamDeleted(txn, sp, ev, pl.TeamDeleted.GetTeam())
	case *eventsv1.Envelope_MembershipCreated:
		err = p.applyMembershipPut(txn, sp, ev, pl.MembershipCreated.GetMembership())
	case *eventsv1.Envelope_MembershipUpdated:
		err = p.applyMembershipPut(txn, sp, ev, pl.MembershipUpdated.GetMembership())
	case *eventsv1.Envelope_MembershipDeleted:
		err = p.applyMembershipDeleted(txn, sp, ev, pl.MembershipDeleted.GetMembership())
	case *eventsv1.Envelope_DatabaseCreated:
		err = p.applyDatabasePut(txn, sp, ev, pl.DatabaseCreated.GetDatabase())
	case *eventsv1.Envelope_DatabaseUpdated:
		err = p.applyDatabasePut(txn, sp, ev, pl.DatabaseUpdated.GetDatabase())
	case *eventsv1.Envelope_DatabaseDeleted:
		err = p.applyDatabaseDeleted(txn, sp, ev, pl.DatabaseDeleted.GetDatabase())
	case *eventsv1.Envelope_CollectionCreated:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.CollectionCreated.GetCollection())
	case *eventsv1.Envelope_CollectionUpdated:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.CollectionUpdated.GetCollection())
	case *eventsv1.Envelope_CollectionDeleted:
		err = p.applyCollectionDeleted(txn, sp, ev, pl.CollectionDeleted.GetCollection())
	case *eventsv1.Envelope_AttributeCreated:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.AttributeCreated.GetCollection())
	case *eventsv1.Envelope_AttributeDeleted:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.AttributeDeleted.GetCollection())
	case *eventsv1.Envelope_IndexCreated:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.IndexCreated.GetCollection())
	case *eventsv1.Envelope_IndexUpdated:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.IndexUpdated.GetCollection())
	case *eventsv1.Envelope_IndexDeleted:
		eff, err = p.applyCollectionPut(txn, sp, ev, pl.IndexDeleted.GetCollection())
	case *eventsv1.Envelope_DocumentCreated:
		err = p.applyDocument(txn, sp, ev, pl.DocumentCreated.GetDocument(), false)
	case *eventsv1.Envelope_DocumentUpdated:
		err = p.applyDocument(txn, sp, ev, pl.DocumentUpdated.GetDocument(), false)
	case *eventsv1.Envelope_DocumentDeleted:
		err = p.applyDocument(txn, sp, ev, pl.DocumentDeleted.GetDocument(), true)
	case *eventsv1.Envelope_TransactionCreated:
		err = p.applyTransaction(txn, sp, ev, pl.TransactionCreated.GetTransaction(), nil)
	case *eventsv1.Envelope_TransactionStaged:
		err = p.applyTransaction(txn, sp, ev, pl.TransactionStaged.GetTransaction(), pl.TransactionStaged.GetOperations())
	case *eventsv1.Envelope_TransactionCommitted:
		err = p.applyTransaction(txn, sp, ev, pl.TransactionCommitted.GetTransaction(), nil)
	case *eventsv1.Envelope_TransactionRolledBack:
		err = p.applyTransaction(txn, sp, ev, pl.TransactionRolledBack.GetTransaction(), nil)
	case *eventsv1.Envelope_BucketCreated:
		err = p.applyBucket(txn, sp, ev, pl.BucketCreated.GetBucket(), false)
	case *eventsv1.Envelope_BucketUpdated:
		err = p.applyBucket(txn, sp, ev, pl.BucketUpdated.GetBucket(), false)
	case *eventsv1.Envelope_BucketDeleted:
		err = p.applyBucket(txn, sp, ev, pl.BucketDeleted.GetBucket(), true)
	case *eventsv1.Envelope_UploadProgressed:
		err = p.applyUpload(txn, sp, ev, pl.UploadProgressed.GetUpload(), false)
	case *eventsv1.Envelope_UploadAbandoned:
		err = p.applyUpload(txn, sp, ev, pl.UploadAbandoned.GetUpload(), true)
	case *eventsv1.Envelope_FileCreated:
		err = p.applyFile(txn, sp, ev, pl.FileCreated.GetFile(), true, false)
	case *eventsv1.Envelope_FileUpdated:
		err = p.applyFile(txn, sp, ev, pl.FileUpdated.GetFile(), false, false)
	case *eventsv1.Envelope_FileDeleted:
		err = p.applyFile(txn, sp, ev, pl.FileDeleted.GetFile(), false, true)
	case *eventsv1.Envelope_FileTokenCreated:
		err = p.applyFileToken(txn, sp, ev, pl.FileTokenCreated.GetToken(), false)
	case *eventsv1.Envelope_FileTokenDeleted:
		err = p.applyFileToken(txn, sp, ev, pl.FileTokenDeleted.GetToken(), true)
	case *eventsv1.Envelope_FunctionCreated:
		err = p.applyFunction(txn, sp, ev, pl.FunctionCreated.GetFunction(), false)
	case *eventsv1.Envelope_FunctionUpdated:
		err = p.applyFunction(txn, sp, ev, pl.FunctionUpdated.GetFunction(), false)
	case *eventsv1.Envelope_FunctionDeleted:
		err = p.applyFunction(txn, sp, ev, pl.FunctionDeleted.GetFunction(), true)
	case *eventsv1.Envelope_FunctionDeploymentCreated:
		err = p.applyFunctionDeployment(txn, sp, ev, pl.FunctionDeploymentCreated.GetDeployment(), false)
	case *eventsv1.Envelope_FunctionDeploymentDeleted:
		err = p.applyFunctionDeployment(txn, sp, ev, pl.FunctionDeploymentDeleted.GetDeployment(), true)
	case *eventsv1.Envelope_ExecutionCreated:
		err = p.applyExecution(txn, sp, ev, pl.ExecutionCreated.GetExecution())
	case *eventsv1.Envelope_ExecutionUpdated:
		err = p.applyExecution(txn, sp, ev, pl.ExecutionUpdated.GetExecution())
	case *eventsv1.Envelope_ExecutionsExpired:
		err = p.applyExecutionsExpired(txn, sp, ev, pl.ExecutionsExpired)
	default:
		return effect{}, fatal("%s seq %d (%s, event %s): %w %T; upgrade this node",
			sp.stream, ev.msg.Seq, ev.msg.Subject, ev.env.GetId(), ErrUnknownEvent, pl)
	}
	if err != nil {
		return effect{}, err
	}
	return eff, p.indexIdempotency(txn, sp, ev)
}

// indexIdempotency remembers which sequence an idempotency key's message
// got, for as long as the stream would deduplicate it. The expiry derives
// from the message's stream time, never the clock, so a rebuild writes the
// same entry.
func (p *Projections) indexIdempotency(txn *badger.Txn, sp keyspace, ev event) error {
	id := ev.msg.MsgID()
	if !strings.HasPrefix(id, idemMsgIDPrefix) {
		return nil
	}
	e := badger.NewEntry(sp.idemKey(id), encodeSeq(ev.msg.Seq))
	e.ExpiresAt = uint64(ev.msg.Time.Add(p.dup).Unix())
	return txn.SetEntry(e)
}
