package database

import (
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// MaxNameLen is the longest database or collection name, in characters.
const MaxNameLen = 128

// ErrDatabaseNotFound and ErrCollectionNotFound are the deciders' answer
// to a command on a missing resource (comparable with errors.Is, so that
// callers can name the id, which a nil state does not know).
var (
	ErrDatabaseNotFound   = domain.Errorf(domain.KindNotFound, "database not found")
	ErrCollectionNotFound = domain.Errorf(domain.KindNotFound, "collection not found")
)

// DatabaseState is a database's current state; nil when it does not exist
// (never created, or deleted).
type DatabaseState = *eventsv1.Database

// DatabaseCommand is one of CreateDatabase, UpdateDatabase, DeleteDatabase.
type DatabaseCommand interface{ isDatabaseCommand() }

// CreateDatabase makes a database. UID is a fresh ULID: the database's
// identity forever, even if its id is used again after a delete.
type CreateDatabase struct {
	ID, ProjectID, Name string
	Enabled             bool
	UID                 string
	Now                 time.Time
}

// UpdateDatabase changes the fields that are set.
type UpdateDatabase struct {
	Name    *string
	Enabled *bool
	Now     time.Time
}

// DeleteDatabase deletes the database; its collections and documents go
// with it (the projection drops them; a collection left in the log no
// longer counts, see LiveCollection).
type DeleteDatabase struct{ Now time.Time }

func (CreateDatabase) isDatabaseCommand() {}
func (UpdateDatabase) isDatabaseCommand() {}
func (DeleteDatabase) isDatabaseCommand() {}

func checkName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return domain.FieldError("name", "must not be empty")
	case n > MaxNameLen || !utf8.ValidString(name):
		return domain.FieldError("name", "must be at most %d characters of valid UTF-8", MaxNameLen)
	}
	return nil
}

// DecideDatabase returns the events that follow from cmd given state.
// Returns KindAlreadyExists, KindNotFound or KindInvalid (naming the field).
func DecideDatabase(state DatabaseState, cmd DatabaseCommand) ([]*eventsv1.Envelope, error) {
	switch c := cmd.(type) {
	case CreateDatabase:
		if state != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "database %q already exists", c.ID)
		}
		if !domain.ValidResourceID(c.ID) {
			return nil, domain.FieldError("database_id", "malformed id %q", truncate(c.ID))
		}
		if err := checkName(c.Name); err != nil {
			return nil, err
		}
		if c.UID == "" {
			return nil, domain.Errorf(domain.KindInternal, "database %q created without a uid", c.ID)
		}
		ts := timestamppb.New(c.Now)
		d := &eventsv1.Database{Id: c.ID, ProjectId: c.ProjectID, Name: c.Name, Enabled: c.Enabled, Uid: c.UID, CreatedAt: ts, UpdatedAt: ts}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DatabaseCreated{DatabaseCreated: &eventsv1.DatabaseCreated{Database: d}}}}, nil
	case UpdateDatabase:
		if state == nil {
			return nil, ErrDatabaseNotFound
		}
		d := proto.CloneOf(state)
		if c.Name != nil {
			if err := checkName(*c.Name); err != nil {
				return nil, err
			}
			d.Name = *c.Name
		}
		if c.Enabled != nil {
			d.Enabled = *c.Enabled
		}
		if proto.Equal(d, state) {
			return nil, nil
		}
		d.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DatabaseUpdated{DatabaseUpdated: &eventsv1.DatabaseUpdated{Database: d}}}}, nil
	case DeleteDatabase:
		if state == nil {
			return nil, ErrDatabaseNotFound
		}
		d := proto.CloneOf(state)
		d.UpdatedAt = timestamppb.New(c.Now)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DatabaseDeleted{DatabaseDeleted: &eventsv1.DatabaseDeleted{Database: d}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown database command %T", cmd)
	}
}

// EvolveDatabase returns the database's state after e.
func EvolveDatabase(state DatabaseState, e *eventsv1.Envelope) DatabaseState {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_DatabaseCreated:
		return p.DatabaseCreated.GetDatabase()
	case *eventsv1.Envelope_DatabaseUpdated:
		return p.DatabaseUpdated.GetDatabase()
	case *eventsv1.Envelope_DatabaseDeleted:
		return nil
	}
	return state
}
