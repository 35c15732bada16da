// Package team decides the lifecycle of a project's teams and their
// memberships, following Appwrite: a team has a name and JSON preferences;
// a membership gives a user (or, while an invitation waits, an email
// address) a set of team roles; "owner" members manage the team.
//
// Team and Membership are separate aggregates (cairn.<p>.teams.<t>.* and
// cairn.<p>.teams.<t>.memberships.<m>.*). A membership outlives neither its
// team's deletion nor its re-creation under the same id: it records the
// team's created_at and counts only while that matches (Live).
//
// Pure: ids, time and secret hashes come in the commands. The package never
// sees a secret in clear, and performs no I/O.
package team

import (
	"bytes"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// State is a team's current state; nil when it does not exist.
type State = *eventsv1.Team

// Limits of a team's fields.
const (
	MaxNameLen  = 128
	MaxPrefsLen = 64 << 10 // bytes of the prefs JSON, as in Appwrite
)

// Command is one of Create, Update, Delete.
type Command interface{ isCommand() }

// Create makes a team. When Owner is set (an end user creating the team),
// the same atomic append also makes the creator's membership.
type Create struct {
	ID        string
	ProjectID string
	Name      string
	// PrefsJSON is a JSON object; "" means {}.
	PrefsJSON string
	Owner     *Owner
	Now       time.Time
}

// Owner is the creator's membership made with a team.
type Owner struct {
	UserID string
	// Roles default to ["owner"] when empty.
	Roles []string
}

// Update changes the fields that are set.
type Update struct {
	Name      *string
	PrefsJSON *string
	Now       time.Time
}

// Delete deletes the team; its memberships go with it.
type Delete struct{ Now time.Time }

func (Create) isCommand() {}
func (Update) isCommand() {}
func (Delete) isCommand() {}

func checkName(name string) error {
	switch {
	case name == "":
		return domain.FieldError("name", "must not be empty")
	case len(name) > MaxNameLen:
		return domain.FieldError("name", "must be at most %d bytes", MaxNameLen)
	}
	return nil
}

// CanonicalPrefs checks that s is a JSON object of at most MaxPrefsLen
// bytes and returns it in one canonical form (keys sorted, no spaces,
// numbers kept as written), so equal prefs store equal bytes. "" is {}.
func CanonicalPrefs(s string) (string, error) {
	if s == "" {
		return "{}", nil
	}
	if len(s) > MaxPrefsLen {
		return "", domain.FieldError("prefs", "must be at most %d bytes of JSON", MaxPrefsLen)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return "", domain.FieldError("prefs", "must be a JSON object")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", domain.FieldError("prefs", "must be a JSON object: %v", err)
	}
	if len(b) > MaxPrefsLen {
		return "", domain.FieldError("prefs", "must be at most %d bytes of JSON", MaxPrefsLen)
	}
	return string(b), nil
}

// Decide returns the events that follow from cmd given state. Returns
// KindAlreadyExists, KindNotFound or KindInvalid (naming the field).
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case Create:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "team %q already exists", c.ID)
		}
		if !domain.ValidResourceID(c.ID) {
			return nil, domain.FieldError("team_id", "malformed id")
		}
		if err := checkName(c.Name); err != nil {
			return nil, err
		}
		prefs, err := CanonicalPrefs(c.PrefsJSON)
		if err != nil {
			return nil, err
		}
		ts := timestamppb.New(c.Now)
		t := &eventsv1.Team{Id: c.ID, ProjectId: c.ProjectID, Name: c.Name, PrefsJson: prefs, CreatedAt: ts, UpdatedAt: ts}
		out := []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TeamCreated{TeamCreated: &eventsv1.TeamCreated{Team: t}}}}
		if c.Owner != nil {
			roles := c.Owner.Roles
			if len(roles) == 0 {
				roles = []string{RoleOwner}
			}
			evs, err := DecideMembership(t, nil, AddMember{ID: MemberID(c.ID, c.Owner.UserID), ProjectID: c.ProjectID,
				UserID: c.Owner.UserID, Roles: roles, Now: c.Now})
			if err != nil {
				return nil, err
			}
			out = append(out, evs...)
		}
		return out, nil
	case Update:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "team not found")
		}
		t := proto.CloneOf(state)
		if c.Name != nil {
			if err := checkName(*c.Name); err != nil {
				return nil, err
			}
			t.Name = *c.Name
		}
		if c.PrefsJSON != nil {
			prefs, err := CanonicalPrefs(*c.PrefsJSON)
			if err != nil {
				return nil, err
			}
			t.PrefsJson = prefs
		}
		if proto.Equal(t, state) {
			return nil, nil
		}
		t.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TeamUpdated{TeamUpdated: &eventsv1.TeamUpdated{Team: t}}}}, nil
	case Delete:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "team not found")
		}
		t := proto.CloneOf(state)
		t.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TeamDeleted{TeamDeleted: &eventsv1.TeamDeleted{Team: t}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown team command %T", cmd)
	}
}

// Evolve returns the team's state after e. Membership events are not the
// team's: they leave it unchanged.
func Evolve(state State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_TeamCreated:
		return p.TeamCreated.GetTeam()
	case *eventsv1.Envelope_TeamUpdated:
		return p.TeamUpdated.GetTeam()
	case *eventsv1.Envelope_TeamDeleted:
		return nil
	}
	return state
}
