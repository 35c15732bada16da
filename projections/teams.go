package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain/permission"
	"github.com/cairn-dev/cairn/domain/team"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// Teams, applied from the project's stream:
//
//	p/<project>/teams/<team>                    eventsv1.Team
//	p/<project>/memberships/<team>/<m>          eventsv1.Membership
//	p/<project>/usermemberships/<user>/<team>   eventsv1.Membership (confirmed ones)
//
// The last index resolves a session's team roles with one prefix scan.
// Only memberships that are team.Live when applied are kept: a membership
// event racing its team's deletion leaves nothing behind. TeamDeleted drops
// the team's memberships in the same transaction, so one team can hold as
// many memberships as one Badger transaction can delete (tens of
// thousands with the default memtable).

func teamsPrefix(project string) string { return projectPrefix + project + "/" + partTeams }
func teamKey(project, id string) []byte { return []byte(teamsPrefix(project) + id) }
func membershipsPrefix(project, teamID string) string {
	return projectPrefix + project + "/" + partMemberships + teamID + "/"
}
func membershipKey(project, teamID, id string) []byte {
	return []byte(membershipsPrefix(project, teamID) + id)
}
func userMembershipsPrefix(project, user string) string {
	return projectPrefix + project + "/" + partUserMemberships + user + "/"
}
func userMembershipKey(project, user, teamID string) []byte {
	return []byte(userMembershipsPrefix(project, user) + teamID)
}

func badToken(s string) bool { return s == "" || strings.Contains(s, "/") }

func checkTeam(sp keyspace, ev event, t *eventsv1.Team) error {
	switch {
	case sp.project == "":
		return fatal("%s seq %d: team event in the system stream", sp.stream, ev.msg.Seq)
	case badToken(t.GetId()):
		return fatal("%s seq %d (event %s): bad team id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), t.GetId())
	case t.GetProjectId() != sp.project:
		return fatal("%s seq %d (event %s): team of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), t.GetProjectId())
	}
	return nil
}

func checkMembership(sp keyspace, ev event, m *eventsv1.Membership) error {
	switch {
	case sp.project == "":
		return fatal("%s seq %d: membership event in the system stream", sp.stream, ev.msg.Seq)
	case badToken(m.GetId()) || badToken(m.GetTeamId()) || strings.Contains(m.GetUserId(), "/"):
		return fatal("%s seq %d (event %s): bad membership %q of team %q (user %q)", sp.stream, ev.msg.Seq, ev.env.GetId(), m.GetId(), m.GetTeamId(), m.GetUserId())
	case m.GetProjectId() != sp.project:
		return fatal("%s seq %d (event %s): membership of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), m.GetProjectId())
	}
	return nil
}

// getIn reads one value inside txn into m; found is false when absent.
func getIn(txn *badger.Txn, key []byte, m proto.Message) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := item.Value(func(v []byte) error { return proto.Unmarshal(v, m) }); err != nil {
		return false, fatal("decode %s: %w", key, err)
	}
	return true, nil
}

func (p *Projections) applyTeamPut(txn *badger.Txn, sp keyspace, ev event, t *eventsv1.Team) error {
	if err := checkTeam(sp, ev, t); err != nil {
		return err
	}
	b, err := marshal(t)
	if err != nil {
		return fatal("encode team %s: %w", t.GetId(), err)
	}
	return txn.Set(teamKey(sp.project, t.GetId()), b)
}

// teamDeleteInline is the most memberships a team's delete removes in its
// event's own transaction; a larger team's go first, in transactions of
// that many (an effect), so no team is too large to delete.
const teamDeleteInline = 1000

func (p *Projections) applyTeamDeleted(txn *badger.Txn, sp keyspace, ev event, t *eventsv1.Team) (effect, error) {
	if err := checkTeam(sp, ev, t); err != nil {
		return effect{}, err
	}
	prefix := []byte(membershipsPrefix(sp.project, t.GetId()))
	many, err := p.moreThan(prefix, teamDeleteInline)
	if err != nil {
		return effect{}, err
	}
	if !many {
		if _, err := p.dropMemberships(txn, sp.project, t.GetId(), -1); err != nil {
			return effect{}, err
		}
		return effect{}, txn.Delete(teamKey(sp.project, t.GetId()))
	}
	// The event's transaction reads no membership: the chunks delete them
	// without conflicting with it. Cut short, the event is applied again
	// and deletes what is left.
	return effect{pre: func(ctx context.Context) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var n int
			p.gate.RLock()
			err := p.db.Update(func(chunk *badger.Txn) (err error) {
				n, err = p.dropMemberships(chunk, sp.project, t.GetId(), teamDeleteInline)
				return err
			})
			p.gate.RUnlock()
			if err != nil {
				return fmt.Errorf("projections: delete memberships of team %s: %w", t.GetId(), err)
			}
			if n < teamDeleteInline {
				return txn.Delete(teamKey(sp.project, t.GetId()))
			}
		}
	}}, nil
}

// dropMemberships deletes up to max (all when negative) of a team's
// memberships, with their entries in the users' index, and returns how
// many it deleted.
func (p *Projections) dropMemberships(txn *badger.Txn, project, teamID string, max int) (int, error) {
	type doomed struct{ id, user string }
	var ms []doomed
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(membershipsPrefix(project, teamID)), PrefetchValues: true})
	for it.Rewind(); it.Valid() && len(ms) != max; it.Next() {
		m := &eventsv1.Membership{}
		if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, m) }); err != nil {
			it.Close()
			return 0, fatal("decode membership %s: %w", it.Item().Key(), err)
		}
		ms = append(ms, doomed{m.GetId(), m.GetUserId()})
	}
	it.Close()
	for _, m := range ms {
		if err := p.dropUserMembership(txn, project, m.user, teamID, m.id); err != nil {
			return 0, err
		}
		if err := txn.Delete(membershipKey(project, teamID, m.id)); err != nil {
			return 0, err
		}
	}
	return len(ms), nil
}

// moreThan reports whether more than n keys are under prefix (committed).
func (p *Projections) moreThan(prefix []byte, n int) (bool, error) {
	count := 0
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid() && count <= n; it.Next() {
			count++
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("projections: count %s: %w", prefix, err)
	}
	return count > n, nil
}

// dropUserMembership removes user's entry for team if it is membership id.
func (p *Projections) dropUserMembership(txn *badger.Txn, project, user, teamID, id string) error {
	if user == "" {
		return nil
	}
	key := userMembershipKey(project, user, teamID)
	cur := &eventsv1.Membership{}
	found, err := getIn(txn, key, cur)
	if err != nil || !found || cur.GetId() != id {
		return err
	}
	return txn.Delete(key)
}

func (p *Projections) applyMembershipPut(txn *badger.Txn, sp keyspace, ev event, m *eventsv1.Membership) error {
	if err := checkMembership(sp, ev, m); err != nil {
		return err
	}
	t := &eventsv1.Team{}
	found, err := getIn(txn, teamKey(sp.project, m.GetTeamId()), t)
	if err != nil {
		return err
	}
	if !found || !team.Live(t, m) {
		// Written while its team was being deleted: it belongs to no team.
		return nil
	}
	key := membershipKey(sp.project, m.GetTeamId(), m.GetId())
	old := &eventsv1.Membership{}
	if _, err := getIn(txn, key, old); err != nil {
		return err
	}
	if old.GetUserId() != "" && (old.GetUserId() != m.GetUserId() || !m.GetConfirmed()) {
		if err := p.dropUserMembership(txn, sp.project, old.GetUserId(), m.GetTeamId(), m.GetId()); err != nil {
			return err
		}
	}
	b, err := marshal(m)
	if err != nil {
		return fatal("encode membership %s: %w", m.GetId(), err)
	}
	if err := txn.Set(key, b); err != nil {
		return err
	}
	if m.GetConfirmed() && m.GetUserId() != "" {
		return txn.Set(userMembershipKey(sp.project, m.GetUserId(), m.GetTeamId()), b)
	}
	return nil
}

func (p *Projections) applyMembershipDeleted(txn *badger.Txn, sp keyspace, ev event, m *eventsv1.Membership) error {
	if err := checkMembership(sp, ev, m); err != nil {
		return err
	}
	key := membershipKey(sp.project, m.GetTeamId(), m.GetId())
	old := &eventsv1.Membership{}
	found, err := getIn(txn, key, old)
	if err != nil || !found {
		return err
	}
	if err := p.dropUserMembership(txn, sp.project, old.GetUserId(), m.GetTeamId(), m.GetId()); err != nil {
		return err
	}
	return txn.Delete(key)
}

// Team returns a project's team; ErrNotFound if there is none.
func (p *Projections) Team(project, id string) (*eventsv1.Team, error) {
	t := &eventsv1.Team{}
	if err := p.getProto(project, id, teamKey(project, id), t); err != nil {
		return nil, fmt.Errorf("team %s of project %s: %w", id, project, err)
	}
	return t, nil
}

// ListTeams returns up to limit teams of a project with ids after `after`,
// ordered by id; with search set, only those whose name or id contains it,
// ignoring case.
func (p *Projections) ListTeams(project, search, after string, limit int) ([]*eventsv1.Team, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	if search == "" {
		return listProto(p, teamsPrefix(project), after, limit, func() *eventsv1.Team { return &eventsv1.Team{} })
	}
	search = strings.ToLower(search)
	limit = clampLimit(limit)
	prefix := teamsPrefix(project)
	var out []*eventsv1.Team
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		defer it.Close()
		start := []byte(prefix)
		if after != "" {
			start = append([]byte(prefix+after), 0)
		}
		for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
			t := &eventsv1.Team{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, t) }); err != nil {
				return err
			}
			if strings.Contains(strings.ToLower(t.GetName()), search) || strings.Contains(strings.ToLower(t.GetId()), search) {
				out = append(out, t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: list teams of %s: %w", project, err)
	}
	return out, nil
}

// Membership returns a membership of a team; ErrNotFound if there is none.
func (p *Projections) Membership(project, teamID, id string) (*eventsv1.Membership, error) {
	if badToken(teamID) {
		return nil, fmt.Errorf("team %q: %w", teamID, ErrNotFound)
	}
	m := &eventsv1.Membership{}
	if err := p.getProto(project, id, membershipKey(project, teamID, id), m); err != nil {
		return nil, fmt.Errorf("membership %s of team %s: %w", id, teamID, err)
	}
	return m, nil
}

// ListMemberships returns up to limit memberships of a team (pending
// invitations included) with ids after `after`, ordered by id.
func (p *Projections) ListMemberships(project, teamID, after string, limit int) ([]*eventsv1.Membership, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	if badToken(teamID) {
		return nil, nil
	}
	return listProto(p, membershipsPrefix(project, teamID), after, limit, func() *eventsv1.Membership { return &eventsv1.Membership{} })
}

// ListUserMemberships returns the confirmed memberships of a user, ordered
// by team id.
func (p *Projections) ListUserMemberships(project, user string) ([]*eventsv1.Membership, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	if badToken(user) {
		return nil, nil
	}
	var out []*eventsv1.Membership
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(userMembershipsPrefix(project, user)), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			m := &eventsv1.Membership{}
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, m) }); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: memberships of user %s in %s: %w", user, project, err)
	}
	return out, nil
}

// UserMemberships returns a user's confirmed memberships as the team part
// of a permission.Subject (team:<t>, team:<t>/<role>, member:<m>).
func (p *Projections) UserMemberships(project, user string) ([]permission.Membership, error) {
	ms, err := p.ListUserMemberships(project, user)
	if err != nil {
		return nil, err
	}
	out := make([]permission.Membership, 0, len(ms))
	for _, m := range ms {
		out = append(out, permission.Membership{TeamID: m.GetTeamId(), MembershipID: m.GetId(), Roles: m.GetRoles()})
	}
	return out, nil
}

// dropMembershipsOf removes a deleted user's memberships from both
// indexes: a user re-created with the same id starts in no team.
func (p *Projections) dropMembershipsOf(txn *badger.Txn, project, user string) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(userMembershipsPrefix(project, user)), PrefetchValues: true})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		m := &eventsv1.Membership{}
		if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, m) }); err != nil {
			it.Close()
			return fatal("decode membership of user %s: %w", user, err)
		}
		keys = append(keys, it.Item().KeyCopy(nil), membershipKey(project, m.GetTeamId(), m.GetId()))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
