package projections

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// End users, applied from the project's stream:
//
//	p/<project>/users/<id>              eventsv1.User (with its sessions and tokens)
//	p/<project>/sessions/<sha256 hex>   SessionRef: the session token index
//	p/<project>/claims/<ns>/<token>     eventsv1.ClaimTaken (token: eventlog.ClaimToken)
//	p/<project>/auth                    eventsv1.AuthSettings

func usersPrefix(project string) string { return projectPrefix + project + "/users/" }

func userKey(project, id string) []byte { return []byte(usersPrefix(project) + id) }

func sessionKey(project string, hash []byte) []byte {
	return []byte(projectPrefix + project + "/sessions/" + hex.EncodeToString(hash))
}

func claimKey(project, ns, value string) []byte {
	return []byte(projectPrefix + project + "/claims/" + ns + "/" + eventlog.ClaimToken(ns, value))
}

func authKey(project string) []byte { return []byte(projectPrefix + project + "/auth") }

func checkUser(sp keyspace, ev event, u *eventsv1.User) error {
	switch {
	case sp.project == "":
		return fatal("%s seq %d: user event in the system stream", sp.stream, ev.msg.Seq)
	case u.GetId() == "" || strings.Contains(u.GetId(), "/"):
		return fatal("%s seq %d (event %s): bad user id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), u.GetId())
	case u.GetProjectId() != sp.project:
		return fatal("%s seq %d (event %s): user of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), u.GetProjectId())
	}
	return nil
}

// applyUser stores a user's state after an event (nil after a deletion)
// and keeps the session index in step with its sessions.
func (p *Projections) applyUser(txn *badger.Txn, sp keyspace, ev event, u *eventsv1.User, deleted bool) error {
	if err := checkUser(sp, ev, u); err != nil {
		return err
	}
	key := userKey(sp.project, u.GetId())
	// Only its sessions are read: absent, it has none.
	old := &eventsv1.User{}
	if _, err := getIn(txn, key, old); err != nil {
		return err
	}
	keep := map[string]bool{}
	if !deleted && !u.GetBlocked() {
		for _, s := range u.GetSessions() {
			keep[string(s.GetSecretHash())] = true
			ref := SessionRef{UserID: u.GetId(), SessionID: s.GetId(), ExpiresAt: s.GetExpiresAt().AsTime(), MfaPending: s.GetMfaPending()}
			if err := txn.Set(sessionKey(sp.project, s.GetSecretHash()), ref.marshal()); err != nil {
				return err
			}
		}
	}
	for _, s := range old.GetSessions() {
		if !keep[string(s.GetSecretHash())] {
			if err := txn.Delete(sessionKey(sp.project, s.GetSecretHash())); err != nil {
				return err
			}
		}
	}
	if deleted {
		if err := p.dropMembershipsOf(txn, sp.project, u.GetId()); err != nil {
			return err
		}
		return txn.Delete(key)
	}
	b, err := marshal(u)
	if err != nil {
		return fatal("encode user %s: %w", u.GetId(), err)
	}
	return txn.Set(key, b)
}

func (p *Projections) applyClaim(txn *badger.Txn, sp keyspace, ev event, taken *eventsv1.ClaimTaken, released *eventsv1.ClaimReleased) error {
	if sp.project == "" {
		return fatal("%s seq %d: claim in the system stream", sp.stream, ev.msg.Seq)
	}
	if taken != nil {
		if taken.GetProjectId() != sp.project || taken.GetNamespace() == "" || strings.Contains(taken.GetNamespace(), "/") {
			return fatal("%s seq %d (event %s): bad claim", sp.stream, ev.msg.Seq, ev.env.GetId())
		}
		b, err := marshal(taken)
		if err != nil {
			return fatal("encode claim: %w", err)
		}
		return txn.Set(claimKey(sp.project, taken.GetNamespace(), taken.GetValue()), b)
	}
	if released.GetProjectId() != sp.project || released.GetNamespace() == "" || strings.Contains(released.GetNamespace(), "/") {
		return fatal("%s seq %d (event %s): bad claim release", sp.stream, ev.msg.Seq, ev.env.GetId())
	}
	return txn.Delete(claimKey(sp.project, released.GetNamespace(), released.GetValue()))
}

func (p *Projections) applyAuthSettings(txn *badger.Txn, sp keyspace, ev event, s *eventsv1.AuthSettings) error {
	if sp.project == "" || s.GetProjectId() != sp.project {
		return fatal("%s seq %d (event %s): auth settings of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), s.GetProjectId())
	}
	b, err := marshal(s)
	if err != nil {
		return fatal("encode auth settings: %w", err)
	}
	return txn.Set(authKey(sp.project), b)
}

// User returns a project's user; ErrNotFound if there is none.
func (p *Projections) User(project, id string) (*eventsv1.User, error) {
	u := &eventsv1.User{}
	if err := p.getProto(project, id, userKey(project, id), u); err != nil {
		return nil, fmt.Errorf("user %s of project %s: %w", id, project, err)
	}
	return u, nil
}

// SessionRef is what authenticating a session needs, kept in the session
// index so that a request costs one small read, not the user's whole state.
// Only sessions of users who are not blocked are indexed.
type SessionRef struct {
	UserID     string
	SessionID  string
	ExpiresAt  time.Time
	MfaPending bool
}

const sessionRefVersion = 1

// Encoding: version, flags (bit 0: MFA pending), varint expiry (unix
// nanoseconds), uvarint length + user id, then the session id.
func (r SessionRef) marshal() []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+1+len(r.UserID)+len(r.SessionID))
	var flags byte
	if r.MfaPending {
		flags |= 1
	}
	b = append(b, sessionRefVersion, flags)
	b = binary.AppendVarint(b, r.ExpiresAt.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(r.UserID)))
	b = append(b, r.UserID...)
	return append(b, r.SessionID...)
}

func unmarshalSessionRef(b []byte) (SessionRef, error) {
	if len(b) < 2 || b[0] != sessionRefVersion {
		return SessionRef{}, errors.New("projections: unknown session index encoding")
	}
	r := SessionRef{MfaPending: b[1]&1 != 0}
	b = b[2:]
	exp, n := binary.Varint(b)
	if n <= 0 {
		return SessionRef{}, errors.New("projections: corrupt session expiry")
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return SessionRef{}, errors.New("projections: corrupt session user id")
	}
	r.ExpiresAt = time.Unix(0, exp)
	r.UserID = string(b[n : n+int(l)])
	r.SessionID = string(b[n+int(l):])
	return r, nil
}

// SessionByHash returns the session whose token hashes to hash;
// ErrNotFound if there is none (never was, signed out, or its user was
// blocked or deleted).
func (p *Projections) SessionByHash(project string, hash []byte) (SessionRef, error) {
	if err := streams.ValidateProject(project); err != nil {
		return SessionRef{}, err
	}
	var ref SessionRef
	err := p.get(sessionKey(project, hash), func(v []byte) (err error) {
		ref, err = unmarshalSessionRef(v)
		return err
	})
	if err != nil {
		return SessionRef{}, fmt.Errorf("session of project %s: %w", project, err)
	}
	return ref, nil
}

// ClaimHolder returns who holds value in a claim namespace; ErrNotFound
// when it is free.
func (p *Projections) ClaimHolder(project, ns, value string) (string, error) {
	c := &eventsv1.ClaimTaken{}
	if err := p.getProto(project, ns, claimKey(project, ns, value), c); err != nil {
		return "", fmt.Errorf("claim %s of project %s: %w", ns, project, err)
	}
	return c.GetHolder(), nil
}

// AuthSettings returns a project's authentication settings (the zero
// settings, with the project id, when none were ever set).
func (p *Projections) AuthSettings(project string) (*eventsv1.AuthSettings, error) {
	s := &eventsv1.AuthSettings{}
	err := p.getProto(project, "auth", authKey(project), s)
	if errors.Is(err, ErrNotFound) {
		return &eventsv1.AuthSettings{ProjectId: project}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth settings of project %s: %w", project, err)
	}
	return s, nil
}

// ListUsers returns up to limit users of a project with ids after `after`,
// ordered by id.
func (p *Projections) ListUsers(project, after string, limit int) ([]*eventsv1.User, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	return listProto(p, usersPrefix(project), after, limit, func() *eventsv1.User { return &eventsv1.User{} })
}

// MaxSearchScan bounds how many users one search call looks at, so a
// search over a large project answers in bounded time and pages on.
const MaxSearchScan = 10000

// SearchUsers returns up to limit users after `after` that match accepts,
// looking at no more than MaxSearchScan users. next is where the following
// page starts ("" at the end): the last user looked at, which may be past
// the last one returned.
func (p *Projections) SearchUsers(project, after string, limit int, match func(*eventsv1.User) bool) (users []*eventsv1.User, next string, err error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit)
	prefix := usersPrefix(project)
	err = p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		start := []byte(prefix)
		if after != "" {
			start = append([]byte(prefix+after), 0)
		}
		scanned := 0
		for it.Seek(start); it.Valid(); it.Next() {
			if len(users) == limit || scanned == MaxSearchScan {
				return nil
			}
			scanned++
			u := &eventsv1.User{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, u) }); err != nil {
				return err
			}
			next = u.GetId()
			if match(u) {
				users = append(users, u)
			}
		}
		next = "" // the end
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("projections: search users of %s: %w", project, err)
	}
	return users, next, nil
}
