package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/streams"
)

// Badger layout. Every stored name is built here and nowhere else; changing
// one orphans existing read models (they would be rebuilt, but only if the
// checkpoint moved with them), so only ever add.
//
//	s/ckpt                      system checkpoint (CAIRN_SYS)
//	s/projects/<id>             eventsv1.Project
//	s/idem/<msgid>              system stream idempotency index → seq
//	s/domains/<domain>          eventsv1.DomainClaimed: who serves a custom domain
//	s/operators/<id>            eventsv1.Operator: an operator account (operators.go)
//	s/opsessions/<sha256 hex>   SessionRef: the console session index
//	p/<project>/ckpt            project checkpoint (PROJECT_<project>)
//	p/<project>/keys/<keyid>    eventsv1.Key
//	p/<project>/sites/<site>    eventsv1.Site
//	p/<project>/deployments/<site>/<id>  eventsv1.Deployment (its manifest)
//	p/<project>/teams/<team>    eventsv1.Team
//	p/<project>/memberships/<team>/<m>         eventsv1.Membership
//	p/<project>/usermemberships/<user>/<team>  eventsv1.Membership (confirmed; a user's teams)
//	p/<project>/idem/<msgid>    project stream idempotency index → seq
//	p/<project>/ixpending       a rebuild applied events without index entries (see bulk.go)
//
// Project ids and resource ids never contain '/', so "p/<project>/" is a
// prefix of that project's keys only and deleting a project is one DropPrefix.
const (
	sysPrefix     = "s/"
	sysCheckpoint = sysPrefix + "ckpt"
	sysProjects   = sysPrefix + "projects/"
	sysIdem       = sysPrefix + "idem/"
	sysDomains    = sysPrefix + "domains/"
	sysOperators  = sysPrefix + "operators/"
	// sysOperatorSessions is not a prefix of sysOperators' keys nor the
	// other way round.
	sysOperatorSessions = sysPrefix + "opsessions/"
	projectPrefix       = "p/"
	partCheckpoint      = "ckpt"
	partKeys            = "keys/"
	partSites           = "sites/"
	partDeployments     = "deployments/"
	partIdem            = "idem/"
	partIxPending       = "ixpending"
	partTeams           = "teams/"
	partMemberships     = "memberships/"
	// partUserMemberships is not a prefix of partMemberships' keys nor
	// the other way round: "usermemberships/" vs "memberships/".
	partUserMemberships = "usermemberships/"

	// idemMsgIDPrefix marks a Nats-Msg-Id that came from a client's
	// idempotency key (eventlog.IdempotencyPrefix; other appends carry the
	// event's own ULID, which no retry can repeat, so indexing those would
	// only cost space).
	idemMsgIDPrefix = "idem:"
)

// keyspace is the key prefix of one stream's read models, and how a
// consume writes them.
type keyspace struct {
	stream  string
	project string // "" for the system stream
	prefix  string // "s/" or "p/<project>/"
	// bulk, when set, applies documents without their index entries,
	// which buildIndexesInBulk writes at the end (a rebuild; see bulk.go).
	bulk *bulkState
	// counts, when set, keeps a live run's changes to live-document
	// counters while it applies document events (docCounts); tryCommit
	// writes them before anything else and at the transaction's end.
	counts *docCounts
}

func systemSpace() keyspace {
	return keyspace{stream: streams.SystemStream, prefix: sysPrefix}
}

func projectSpace(project string) keyspace {
	return keyspace{stream: streams.ProjectStream(project), project: project, prefix: projectPrefix + project + "/"}
}

// spaceOf maps a stream name to its keyspace.
func spaceOf(stream string) (keyspace, error) {
	if stream == streams.SystemStream {
		return systemSpace(), nil
	}
	if id, ok := streams.ProjectFromStream(stream); ok {
		return projectSpace(id), nil
	}
	return keyspace{}, fmt.Errorf("projections: %q is not a Cairn stream", stream)
}

func (k keyspace) checkpointKey() []byte {
	if k.project == "" {
		return []byte(sysCheckpoint)
	}
	return []byte(k.prefix + partCheckpoint)
}

// ixPendingKey marks a project read model whose document indexes are not
// built yet (keyspace.bulk).
func (k keyspace) ixPendingKey() []byte { return []byte(k.prefix + partIxPending) }

func (k keyspace) idemKey(msgID string) []byte {
	if k.project == "" {
		return []byte(sysIdem + msgID)
	}
	return []byte(k.prefix + partIdem + msgID)
}

func projectKey(id string) []byte { return []byte(sysProjects + id) }

func keysPrefix(project string) string { return projectPrefix + project + "/" + partKeys }

func keyKey(project, keyID string) []byte { return []byte(keysPrefix(project) + keyID) }

// checkpoint is what a projector has applied of its stream. Created and
// EventID let a restart tell whether the read model still belongs to the
// stream it is about to consume (see projector.verify).
type checkpoint struct {
	Seq     uint64
	Created time.Time // the stream's creation time
	EventID string    // envelope id of the event at Seq
}

const checkpointVersion = 1

// Encoding: version byte, uvarint seq, varint created (unix nanoseconds),
// then the event id bytes.
func (c checkpoint) marshal() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.EventID))
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, c.Seq)
	b = binary.AppendVarint(b, c.Created.UnixNano())
	return append(b, c.EventID...)
}

func unmarshalCheckpoint(b []byte) (checkpoint, error) {
	if len(b) == 0 || b[0] != checkpointVersion {
		return checkpoint{}, errors.New("projections: unknown checkpoint encoding")
	}
	b = b[1:]
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return checkpoint{}, errors.New("projections: corrupt checkpoint sequence")
	}
	b = b[n:]
	created, n := binary.Varint(b)
	if n <= 0 {
		return checkpoint{}, errors.New("projections: corrupt checkpoint creation time")
	}
	return checkpoint{Seq: seq, Created: time.Unix(0, created).UTC(), EventID: string(b[n:])}, nil
}

// encodeSeq is the value of an idempotency entry.
func encodeSeq(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func decodeSeq(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, errors.New("projections: corrupt idempotency entry")
	}
	return binary.BigEndian.Uint64(b), nil
}
