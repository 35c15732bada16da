// Package apikey decides the lifecycle of project API keys. Pure: ids,
// time and the secret's hash come in the commands; the secret itself never
// reaches this package.
package apikey

import (
	"crypto/sha256"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// State is a key's current state; nil when it does not exist.
type State = *eventsv1.Key

// Command is one of Create, Update, Delete.
type Command interface{ isCommand() }

// Create issues a key.
type Create struct {
	ID         string
	ProjectID  string
	Name       string
	Scopes     []string
	ExpiresAt  time.Time // zero: never
	SecretHash []byte
	Now        time.Time
}

// Update changes the fields that are set.
type Update struct {
	Name        *string
	Scopes      *[]string
	ExpiresAt   time.Time // zero: keep
	ClearExpiry bool
	Now         time.Time
}

// Delete revokes the key.
type Delete struct{ Now time.Time }

func (Create) isCommand() {}
func (Update) isCommand() {}
func (Delete) isCommand() {}

func checkScopes(scopes []string) error {
	for _, s := range scopes {
		if !access.ValidScope(s) {
			return domain.FieldError("scopes", "unknown scope %q", s)
		}
	}
	return nil
}

// Decide returns the events that follow from cmd given state. Returns
// KindAlreadyExists, KindNotFound or KindInvalid (naming the field).
func Decide(state State, cmd Command) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case Create:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "key %q already exists", c.ID)
		}
		if !domain.ValidResourceID(c.ID) {
			return nil, domain.FieldError("key_id", "malformed id")
		}
		if c.Name == "" {
			return nil, domain.FieldError("name", "must not be empty")
		}
		if err := checkScopes(c.Scopes); err != nil {
			return nil, err
		}
		if len(c.SecretHash) != sha256.Size {
			return nil, domain.Errorf(domain.KindInternal, "secret hash must be SHA-256")
		}
		if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(c.Now) {
			return nil, domain.FieldError("expires_at", "must be in the future")
		}
		ts := timestamppb.New(c.Now)
		k := &eventsv1.Key{Id: c.ID, ProjectId: c.ProjectID, Name: c.Name, Scopes: normalize(c.Scopes),
			SecretHash: c.SecretHash, CreatedAt: ts, UpdatedAt: ts}
		if !c.ExpiresAt.IsZero() {
			k.ExpiresAt = timestamppb.New(c.ExpiresAt)
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_KeyCreated{KeyCreated: &eventsv1.KeyCreated{Key: k}}}}, nil
	case Update:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "key not found")
		}
		k := proto.CloneOf(state)
		if c.Name != nil {
			if *c.Name == "" {
				return nil, domain.FieldError("name", "must not be empty")
			}
			k.Name = *c.Name
		}
		if c.Scopes != nil {
			if err := checkScopes(*c.Scopes); err != nil {
				return nil, err
			}
			k.Scopes = normalize(*c.Scopes)
		}
		switch {
		case c.ClearExpiry && !c.ExpiresAt.IsZero():
			return nil, domain.FieldError("expires_at", "set expires_at or clear_expiry, not both")
		case c.ClearExpiry:
			k.ExpiresAt = nil
		case !c.ExpiresAt.IsZero():
			if !c.ExpiresAt.After(c.Now) {
				return nil, domain.FieldError("expires_at", "must be in the future")
			}
			k.ExpiresAt = timestamppb.New(c.ExpiresAt)
		}
		if proto.Equal(k, state) {
			return nil, nil
		}
		k.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_KeyUpdated{KeyUpdated: &eventsv1.KeyUpdated{Key: k}}}}, nil
	case Delete:
		if state == nil {
			return nil, domain.Errorf(domain.KindNotFound, "key not found")
		}
		k := proto.CloneOf(state)
		k.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_KeyDeleted{KeyDeleted: &eventsv1.KeyDeleted{Key: k}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown key command %T", cmd)
	}
}

// normalize sorts and copies scopes so equal sets store equal bytes.
func normalize(scopes []string) []string {
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

// Evolve returns the state after e.
func Evolve(state State, e *eventsv1.Envelope) State {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_KeyCreated:
		return p.KeyCreated.GetKey()
	case *eventsv1.Envelope_KeyUpdated:
		return p.KeyUpdated.GetKey()
	case *eventsv1.Envelope_KeyDeleted:
		return nil
	}
	return state
}

// Usable reports whether the key may authenticate at now.
func Usable(k State, now time.Time) bool {
	return k != nil && (k.GetExpiresAt() == nil || now.Before(k.GetExpiresAt().AsTime()))
}
