package database

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// CollectionState is a collection's current state with its whole schema;
// nil when it does not exist.
type CollectionState = *eventsv1.Collection

// LiveCollection reports whether c is a collection of db as db exists now.
// A collection of a deleted database stays the last state of its own
// aggregate; once the database id is used again (a new uid) it belongs to
// no database, so callers treat it as absent.
func LiveCollection(db *eventsv1.Database, c *eventsv1.Collection) bool {
	return db != nil && c != nil && c.GetDatabaseId() == db.GetId() && c.GetDatabaseUid() == db.GetUid()
}

// CollectionCommand is one of CreateCollection, UpdateCollection,
// DeleteCollection, CreateAttribute, DeleteAttribute, CreateIndex,
// DeleteIndex.
type CollectionCommand interface{ isCollectionCommand() }

// CreateCollection makes a collection in Database (the live parent).
type CreateCollection struct {
	Database         *eventsv1.Database
	ID, Name         string
	Permissions      []string
	DocumentSecurity bool
	Enabled          bool
	// UID is a fresh ULID: documents remember the collection they were
	// made in.
	UID string
	Now time.Time
}

// UpdateCollection changes the fields that are set.
type UpdateCollection struct {
	Name             *string
	Permissions      *[]string
	DocumentSecurity *bool
	Enabled          *bool
	Now              time.Time
}

// DeleteCollection deletes the collection; the projection drops its
// documents.
type DeleteCollection struct{ Now time.Time }

// CreateAttribute adds Attribute to the schema. It needs no build:
// documents written before read it as its default (Schema.Read).
type CreateAttribute struct {
	Attribute Attribute
	Now       time.Time
}

// DeleteAttribute removes attribute Key and every index over it.
type DeleteAttribute struct {
	Key string
	Now time.Time
}

// CreateIndex adds Index (its UID set by the caller); the projection
// builds it.
type CreateIndex struct {
	Index Index
	Now   time.Time
}

// DeleteIndex removes index Key.
type DeleteIndex struct {
	Key string
	Now time.Time
}

func (CreateCollection) isCollectionCommand() {}
func (UpdateCollection) isCollectionCommand() {}
func (DeleteCollection) isCollectionCommand() {}
func (CreateAttribute) isCollectionCommand()  {}
func (DeleteAttribute) isCollectionCommand()  {}
func (CreateIndex) isCollectionCommand()      {}
func (DeleteIndex) isCollectionCommand()      {}

func canonicalPermissions(ss []string) ([]string, error) {
	perms, err := permission.ParsePermissions(ss)
	if err != nil {
		return nil, err
	}
	return permission.Strings(perms), nil
}

// next is state cloned as the following event's state: version counts
// every event of the collection, so documents can name the schema they
// were validated against.
func next(state CollectionState, now time.Time) CollectionState {
	c := proto.CloneOf(state)
	c.Version++
	c.UpdatedAt = timestamppb.New(now)
	return c
}

// DecideCollection returns the events that follow from cmd given state
// (the caller passes nil for a collection that is not LiveCollection).
// Returns KindAlreadyExists, KindNotFound, KindResourceExhausted or
// KindInvalid (naming the field).
func DecideCollection(state CollectionState, cmd CollectionCommand) ([]*eventsv1.Envelope, error) {
	if c, ok := cmd.(CreateCollection); ok {
		return createCollection(state, c)
	}
	if state == nil {
		return nil, ErrCollectionNotFound
	}
	switch c := cmd.(type) {
	case UpdateCollection:
		return updateCollection(state, c)
	case DeleteCollection:
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_CollectionDeleted{CollectionDeleted: &eventsv1.CollectionDeleted{Collection: next(state, c.Now)}}}}, nil
	case CreateAttribute:
		return createAttribute(state, c)
	case DeleteAttribute:
		return deleteAttribute(state, c)
	case CreateIndex:
		return createIndex(state, c)
	case DeleteIndex:
		i := slices.IndexFunc(state.GetIndexes(), func(ix *eventsv1.Index) bool { return ix.GetKey() == c.Key })
		if i < 0 {
			return nil, domain.Errorf(domain.KindNotFound, "index %q not found in collection %q", truncate(c.Key), state.GetId())
		}
		removed := state.GetIndexes()[i]
		n := next(state, c.Now)
		n.Indexes = slices.Delete(n.Indexes, i, i+1)
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_IndexDeleted{IndexDeleted: &eventsv1.IndexDeleted{Collection: n, Key: c.Key, Index: removed}}}}, nil
	default:
		return nil, domain.Errorf(domain.KindInternal, "unknown collection command %T", cmd)
	}
}

func createCollection(state CollectionState, c CreateCollection) ([]*eventsv1.Envelope, error) {
	if c.Database == nil {
		return nil, ErrDatabaseNotFound
	}
	if state != nil {
		return nil, domain.Errorf(domain.KindAlreadyExists, "collection %q already exists", c.ID)
	}
	if !domain.ValidResourceID(c.ID) {
		return nil, domain.FieldError("collection_id", "malformed id %q", truncate(c.ID))
	}
	if err := checkName(c.Name); err != nil {
		return nil, err
	}
	perms, err := canonicalPermissions(c.Permissions)
	if err != nil {
		return nil, err
	}
	if c.UID == "" {
		return nil, domain.Errorf(domain.KindInternal, "collection %q created without a uid", c.ID)
	}
	ts := timestamppb.New(c.Now)
	col := &eventsv1.Collection{Id: c.ID, ProjectId: c.Database.GetProjectId(), DatabaseId: c.Database.GetId(),
		DatabaseUid: c.Database.GetUid(), Uid: c.UID, Name: c.Name, Permissions: perms, DocumentSecurity: c.DocumentSecurity,
		Enabled: c.Enabled, Version: 1, CreatedAt: ts, UpdatedAt: ts}
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_CollectionCreated{CollectionCreated: &eventsv1.CollectionCreated{Collection: col}}}}, nil
}

func updateCollection(state CollectionState, c UpdateCollection) ([]*eventsv1.Envelope, error) {
	n := proto.CloneOf(state)
	if c.Name != nil {
		if err := checkName(*c.Name); err != nil {
			return nil, err
		}
		n.Name = *c.Name
	}
	if c.Permissions != nil {
		perms, err := canonicalPermissions(*c.Permissions)
		if err != nil {
			return nil, err
		}
		n.Permissions = perms
	}
	if c.DocumentSecurity != nil {
		n.DocumentSecurity = *c.DocumentSecurity
	}
	if c.Enabled != nil {
		n.Enabled = *c.Enabled
	}
	// proto.Equal holds a nil and an empty permission list equal.
	if proto.Equal(n, state) {
		return nil, nil
	}
	n.Version++
	n.UpdatedAt = timestamppb.New(c.Now)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_CollectionUpdated{CollectionUpdated: &eventsv1.CollectionUpdated{Collection: n}}}}, nil
}

func createAttribute(state CollectionState, c CreateAttribute) ([]*eventsv1.Envelope, error) {
	s, err := SchemaOf(state)
	if err != nil {
		return nil, err
	}
	a := c.Attribute
	if err := ValidateAttribute(s, &a); err != nil {
		return nil, err
	}
	n := next(state, c.Now)
	a.CreatedSeq = n.Version
	a.Status = StatusAvailable
	ev, err := AttributeEvent(a)
	if err != nil {
		return nil, err
	}
	n.Attributes = append(n.Attributes, ev)
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_AttributeCreated{AttributeCreated: &eventsv1.AttributeCreated{Collection: n, Key: a.Key}}}}, nil
}

// deleteAttribute removes the attribute and the indexes over it in one
// event: an index over a missing attribute could be neither built nor used.
func deleteAttribute(state CollectionState, c DeleteAttribute) ([]*eventsv1.Envelope, error) {
	i := slices.IndexFunc(state.GetAttributes(), func(a *eventsv1.Attribute) bool { return a.GetKey() == c.Key })
	if i < 0 {
		return nil, domain.Errorf(domain.KindNotFound, "attribute %q not found in collection %q", truncate(c.Key), state.GetId())
	}
	removed := state.GetAttributes()[i]
	n := next(state, c.Now)
	n.Attributes = slices.Delete(n.Attributes, i, i+1)
	n.Indexes = slices.DeleteFunc(n.Indexes, func(ix *eventsv1.Index) bool { return slices.Contains(ix.GetAttributes(), c.Key) })
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_AttributeDeleted{AttributeDeleted: &eventsv1.AttributeDeleted{Collection: n, Key: c.Key, Attribute: removed}}}}, nil
}

func createIndex(state CollectionState, c CreateIndex) ([]*eventsv1.Envelope, error) {
	s, err := SchemaOf(state)
	if err != nil {
		return nil, err
	}
	ix := c.Index
	if err := ValidateIndex(s, &ix); err != nil {
		return nil, err
	}
	if ix.UID == "" {
		return nil, domain.Errorf(domain.KindInternal, "index %q created without a uid", ix.Key)
	}
	n := next(state, c.Now)
	ix.CreatedSeq = n.Version
	// The projection builds the index and reports available or failed.
	ix.Status = StatusProcessing
	ix.Error = ""
	n.Indexes = append(n.Indexes, IndexEvent(ix))
	return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_IndexCreated{IndexCreated: &eventsv1.IndexCreated{Collection: n, Key: ix.Key}}}}, nil
}

// EvolveCollection returns the collection's state after e.
func EvolveCollection(state CollectionState, e *eventsv1.Envelope) CollectionState {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_CollectionCreated:
		return p.CollectionCreated.GetCollection()
	case *eventsv1.Envelope_CollectionUpdated:
		return p.CollectionUpdated.GetCollection()
	case *eventsv1.Envelope_CollectionDeleted:
		return nil
	case *eventsv1.Envelope_AttributeCreated:
		return p.AttributeCreated.GetCollection()
	case *eventsv1.Envelope_AttributeDeleted:
		return p.AttributeDeleted.GetCollection()
	case *eventsv1.Envelope_IndexCreated:
		return p.IndexCreated.GetCollection()
	case *eventsv1.Envelope_IndexUpdated:
		return p.IndexUpdated.GetCollection()
	case *eventsv1.Envelope_IndexDeleted:
		return p.IndexDeleted.GetCollection()
	}
	return state
}
