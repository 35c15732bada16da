package api

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// The schema side of DatabasesService: databases, collections, attributes
// and indexes. Callers are servers only (operators and keys with the
// databases.*/collections.* scopes, checked by the access interceptor), so
// no permission checks happen here. Every schema change is an event of the
// collection aggregate; answers come from the read model after the write,
// so that an index shows the status this node's projection built.

var attributeTypes = map[cairnv1.AttributeType]database.Type{
	cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING:       database.TypeString,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER:      database.TypeInteger,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT:        database.TypeFloat,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN:      database.TypeBoolean,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_DATETIME:     database.TypeDatetime,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_EMAIL:        database.TypeEmail,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_URL:          database.TypeURL,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_IP:           database.TypeIP,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_ENUM:         database.TypeEnum,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_RELATIONSHIP: database.TypeRelationship,
	cairnv1.AttributeType_ATTRIBUTE_TYPE_POINT:        database.TypePoint,
}

var indexTypes = map[cairnv1.IndexType]database.IndexType{
	cairnv1.IndexType_INDEX_TYPE_KEY:      database.IndexKey,
	cairnv1.IndexType_INDEX_TYPE_UNIQUE:   database.IndexUnique,
	cairnv1.IndexType_INDEX_TYPE_FULLTEXT: database.IndexFulltext,
}

func apiAttributeType(t database.Type) cairnv1.AttributeType {
	for k, v := range attributeTypes {
		if v == t {
			return k
		}
	}
	return cairnv1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED
}

func apiIndexType(t database.IndexType) cairnv1.IndexType {
	for k, v := range indexTypes {
		if v == t {
			return k
		}
	}
	return cairnv1.IndexType_INDEX_TYPE_UNSPECIFIED
}

// newID is the id a create uses: the client's, or a fresh ULID for "" and
// "unique()".
func (h *databasesHandler) newID(id string) string {
	if id == "" || id == domain.UniqueID {
		return h.log.NewID()
	}
	return id
}

// requestField renames the field a schema rule names to the request field
// the caller sent (attribute.size, index.desc…), so the error points at it.
func requestField(err error, prefix string, rename map[string]string) error {
	e, ok := errors.AsType[*domain.Error](err)
	if !ok || e.Field == "" {
		return err
	}
	f := e.Field
	if r, ok := rename[f]; ok {
		f = r
	}
	return &domain.Error{Kind: e.Kind, Field: prefix + f, Message: e.Message}
}

// attributeIn converts a requested attribute. Unset bounds stay zero, so
// that ValidateAttribute applies the type's full range; one bound alone
// gets the full range's other end.
func attributeIn(a *cairnv1.Attribute) (database.Attribute, error) {
	t, ok := attributeTypes[a.GetType()]
	if !ok {
		return database.Attribute{}, domain.FieldError("attribute.type", "unknown attribute type %v", a.GetType())
	}
	out := database.Attribute{Key: a.GetKey(), Type: t, Required: a.GetRequired(), Array: a.GetArray(), Elements: a.GetElements()}
	if s := a.GetSize(); s < 0 || s > math.MaxInt32 {
		out.Size = -1 // out of range: ValidateAttribute names the size
	} else {
		out.Size = int(s)
	}
	if a.IntMin != nil || a.IntMax != nil {
		out.IntMin, out.IntMax = database.MinSafeInteger, database.MaxSafeInteger
		if a.IntMin != nil {
			out.IntMin = *a.IntMin
		}
		if a.IntMax != nil {
			out.IntMax = *a.IntMax
		}
	}
	if a.FloatMin != nil || a.FloatMax != nil {
		out.FloatMin, out.FloatMax = -math.MaxFloat64, math.MaxFloat64
		if a.FloatMin != nil {
			out.FloatMin = *a.FloatMin
		}
		if a.FloatMax != nil {
			out.FloatMax = *a.FloatMax
		}
	}
	if t == database.TypeRelationship {
		out.Relation = database.Relation{Collection: a.GetRelatedCollection(), Type: database.RelationType(a.GetRelationType()),
			TwoWay: a.GetTwoWay(), TwoWayKey: a.GetTwoWayKey(), OnDelete: database.OnDelete(a.GetOnDelete())}
	}
	if d := a.GetDefault(); d != nil {
		// Coerced to the attribute's type by ValidateAttribute.
		out.Default = d.AsInterface()
	}
	return out, nil
}

// attributeFields maps ValidateAttribute's field names to the request's.
func attributeFields(t database.Type) map[string]string {
	if t == database.TypeFloat {
		return map[string]string{"min": "float_min", "max": "float_max"}
	}
	return map[string]string{"min": "int_min", "max": "int_max"}
}

func attributeOut(a *eventsv1.Attribute) (*cairnv1.Attribute, error) {
	attr, err := database.AttributeFromEvent(a)
	if err != nil {
		return nil, err
	}
	out := &cairnv1.Attribute{Key: attr.Key, Type: apiAttributeType(attr.Type), Required: attr.Required, Array: attr.Array,
		Elements: attr.Elements, Status: string(attr.Status), Error: a.GetError()}
	switch attr.Type {
	case database.TypeString:
		out.Size = int64(attr.Size)
	case database.TypeInteger:
		out.IntMin, out.IntMax = &attr.IntMin, &attr.IntMax
	case database.TypeFloat:
		out.FloatMin, out.FloatMax = &attr.FloatMin, &attr.FloatMax
	case database.TypeRelationship:
		r := attr.Relation
		out.RelatedCollection, out.RelationType, out.TwoWay, out.TwoWayKey, out.OnDelete, out.Side =
			r.Collection, string(r.Type), r.TwoWay, r.TwoWayKey, string(r.OnDelete), string(r.Side)
	}
	if attr.Default != nil {
		if out.Default, err = structpb.NewValue(database.ToJSON(attr.Default)); err != nil {
			return nil, fmt.Errorf("attribute %s: default: %w", attr.Key, err)
		}
	}
	return out, nil
}

func indexIn(ix *cairnv1.Index) (database.Index, error) {
	t, ok := indexTypes[ix.GetType()]
	if !ok {
		return database.Index{}, domain.FieldError("index.type", "unknown index type %v (want key, unique or fulltext)", ix.GetType())
	}
	out := database.Index{Key: ix.GetKey(), Type: t, Attributes: ix.GetAttributes()}
	if len(ix.GetDesc()) > 0 {
		out.Desc = ix.GetDesc()
	}
	return out, nil
}

func indexOut(ix *eventsv1.Index) *cairnv1.Index {
	i := database.IndexFromEvent(ix)
	return &cairnv1.Index{Key: i.Key, Type: apiIndexType(i.Type), Attributes: i.Attributes, Desc: i.Desc, Status: string(i.Status), Error: i.Error}
}

func databaseOut(d *eventsv1.Database) *cairnv1.Database {
	return &cairnv1.Database{Id: d.GetId(), ProjectId: d.GetProjectId(), Name: d.GetName(), Enabled: d.GetEnabled(),
		CreatedAt: d.GetCreatedAt(), UpdatedAt: d.GetUpdatedAt()}
}

func collectionOut(c *eventsv1.Collection) (*cairnv1.Collection, error) {
	out := &cairnv1.Collection{Id: c.GetId(), ProjectId: c.GetProjectId(), DatabaseId: c.GetDatabaseId(), Name: c.GetName(),
		Permissions: c.GetPermissions(), DocumentSecurity: c.GetDocumentSecurity(), Enabled: c.GetEnabled(),
		CreatedAt: c.GetCreatedAt(), UpdatedAt: c.GetUpdatedAt()}
	for _, a := range c.GetAttributes() {
		ao, err := attributeOut(a)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", c.GetId(), err)
		}
		out.Attributes = append(out.Attributes, ao)
	}
	for _, ix := range c.GetIndexes() {
		out.Indexes = append(out.Indexes, indexOut(ix))
	}
	return out, nil
}

// loadDatabase returns the database from the read model, or KindNotFound.
func (h *databasesHandler) loadDatabase(project, id string) (*eventsv1.Database, error) {
	d, err := h.reads.Database(project, id)
	if errors.Is(err, errNotFound) {
		return nil, domain.Errorf(domain.KindNotFound, "database %q not found", id)
	}
	return d, err
}

// loadCollection returns the live collection and its database from the
// read model, or KindNotFound naming whichever is missing.
func (h *databasesHandler) loadCollection(project, dbID, id string) (*eventsv1.Database, *eventsv1.Collection, error) {
	db, err := h.loadDatabase(project, dbID)
	if err != nil {
		return nil, nil, err
	}
	c, err := h.reads.Collection(project, dbID, id)
	if errors.Is(err, errNotFound) || (err == nil && !database.LiveCollection(db, c)) {
		return nil, nil, domain.Errorf(domain.KindNotFound, "collection %q not found in database %q", id, dbID)
	}
	return db, c, err
}

// writeDatabase runs one command on a database aggregate.
func (h *databasesHandler) writeDatabase(ctx context.Context, project, id string, cmd database.DatabaseCommand) error {
	meta, err := h.meta(ctx)
	if err != nil {
		return err
	}
	res, err := h.log.Write(ctx, eventlog.DatabaseAggregate(project, id), meta, eventlog.Decide(database.EvolveDatabase,
		func(s database.DatabaseState) ([]*eventsv1.Envelope, error) {
			return database.DecideDatabase(s, cmd)
		}))
	if err != nil {
		return err
	}
	setSeq(ctx, res.Seq)
	return nil
}

// writeCollection runs one command on a collection of db (read from the
// read model just before). A collection left behind by an earlier database
// with the same id is not live and counts as absent. Should db be deleted
// between that read and this write, the collection event names db's uid,
// which no live database has: it stays invisible.
func (h *databasesHandler) writeCollection(ctx context.Context, db *eventsv1.Database, id string, cmd database.CollectionCommand) error {
	meta, err := h.meta(ctx)
	if err != nil {
		return err
	}
	agg := eventlog.CollectionAggregate(db.GetProjectId(), db.GetId(), id)
	res, err := h.log.Write(ctx, agg, meta, eventlog.Decide(database.EvolveCollection,
		func(s database.CollectionState) ([]*eventsv1.Envelope, error) {
			if !database.LiveCollection(db, s) {
				s = nil
			}
			return database.DecideCollection(s, cmd)
		}))
	if err != nil {
		return err
	}
	setSeq(ctx, res.Seq)
	return nil
}

// collectionAfterWrite reads the collection back from the read model, which
// the write path waited for.
func (h *databasesHandler) collectionAfterWrite(project, dbID, id string) (*eventsv1.Collection, error) {
	_, c, err := h.loadCollection(project, dbID, id)
	return c, err
}

func (h *databasesHandler) CreateDatabase(ctx context.Context, req *cairnv1.CreateDatabaseRequest) (*cairnv1.CreateDatabaseResponse, error) {
	project, id := req.GetProjectId(), h.newID(req.GetDatabaseId())
	enabled := req.Enabled == nil || *req.Enabled
	err := h.writeDatabase(ctx, project, id, database.CreateDatabase{ID: id, ProjectID: project, Name: req.GetName(),
		Enabled: enabled, UID: h.log.NewID(), Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	d, err := h.loadDatabase(project, id)
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateDatabaseResponse{Database: databaseOut(d)}, nil
}

func (h *databasesHandler) GetDatabase(ctx context.Context, req *cairnv1.GetDatabaseRequest) (*cairnv1.GetDatabaseResponse, error) {
	d, err := h.loadDatabase(req.GetProjectId(), req.GetDatabaseId())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetDatabaseResponse{Database: databaseOut(d)}, nil
}

func (h *databasesHandler) ListDatabases(ctx context.Context, req *cairnv1.ListDatabasesRequest) (*cairnv1.ListDatabasesResponse, error) {
	ds, err := h.reads.ListDatabases(req.GetProjectId(), req.GetCursorAfter(), pageSize(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListDatabasesResponse{}
	for _, d := range ds {
		res.Databases = append(res.Databases, databaseOut(d))
	}
	return res, nil
}

func (h *databasesHandler) UpdateDatabase(ctx context.Context, req *cairnv1.UpdateDatabaseRequest) (*cairnv1.UpdateDatabaseResponse, error) {
	project, id := req.GetProjectId(), req.GetDatabaseId()
	if err := h.writeDatabase(ctx, project, id, database.UpdateDatabase{Name: req.Name, Enabled: req.Enabled, Now: h.log.Now()}); err != nil {
		if errors.Is(err, database.ErrDatabaseNotFound) {
			return nil, domain.Errorf(domain.KindNotFound, "database %q not found", id)
		}
		return nil, err
	}
	d, err := h.loadDatabase(project, id)
	if err != nil {
		return nil, err
	}
	return &cairnv1.UpdateDatabaseResponse{Database: databaseOut(d)}, nil
}

func (h *databasesHandler) DeleteDatabase(ctx context.Context, req *cairnv1.DeleteDatabaseRequest) (*cairnv1.DeleteDatabaseResponse, error) {
	id := req.GetDatabaseId()
	if err := h.writeDatabase(ctx, req.GetProjectId(), id, database.DeleteDatabase{Now: h.log.Now()}); err != nil {
		if errors.Is(err, database.ErrDatabaseNotFound) {
			return nil, domain.Errorf(domain.KindNotFound, "database %q not found", id)
		}
		return nil, err
	}
	return &cairnv1.DeleteDatabaseResponse{}, nil
}

func (h *databasesHandler) CreateCollection(ctx context.Context, req *cairnv1.CreateCollectionRequest) (*cairnv1.CreateCollectionResponse, error) {
	project := req.GetProjectId()
	db, err := h.loadDatabase(project, req.GetDatabaseId())
	if err != nil {
		return nil, err
	}
	id := h.newID(req.GetCollectionId())
	enabled := req.Enabled == nil || *req.Enabled
	err = h.writeCollection(ctx, db, id, database.CreateCollection{Database: db, ID: id, Name: req.GetName(),
		Permissions: req.GetPermissions(), DocumentSecurity: req.GetDocumentSecurity(), Enabled: enabled, UID: h.log.NewID(), Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	c, err := h.collectionAfterWrite(project, db.GetId(), id)
	if err != nil {
		return nil, err
	}
	out, err := collectionOut(c)
	return &cairnv1.CreateCollectionResponse{Collection: out}, err
}

func (h *databasesHandler) GetCollection(ctx context.Context, req *cairnv1.GetCollectionRequest) (*cairnv1.GetCollectionResponse, error) {
	_, c, err := h.loadCollection(req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	out, err := collectionOut(c)
	return &cairnv1.GetCollectionResponse{Collection: out}, err
}

func (h *databasesHandler) ListCollections(ctx context.Context, req *cairnv1.ListCollectionsRequest) (*cairnv1.ListCollectionsResponse, error) {
	project := req.GetProjectId()
	db, err := h.loadDatabase(project, req.GetDatabaseId())
	if err != nil {
		return nil, err
	}
	cs, err := h.reads.ListCollections(project, db.GetId(), req.GetCursorAfter(), pageSize(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListCollectionsResponse{}
	for _, c := range cs {
		// The projection drops a deleted database's collections; this only
		// guards against one it has not dropped yet.
		if !database.LiveCollection(db, c) {
			continue
		}
		out, err := collectionOut(c)
		if err != nil {
			return nil, err
		}
		res.Collections = append(res.Collections, out)
	}
	return res, nil
}

// collectionCommand runs cmd on an existing collection and reads it back.
func (h *databasesHandler) collectionCommand(ctx context.Context, project, dbID, id string, cmd database.CollectionCommand) (*eventsv1.Collection, error) {
	db, _, err := h.loadCollection(project, dbID, id)
	if err != nil {
		return nil, err
	}
	if err := h.writeCollection(ctx, db, id, cmd); err != nil {
		if errors.Is(err, database.ErrCollectionNotFound) {
			// Deleted since the read: say which one.
			return nil, domain.Errorf(domain.KindNotFound, "collection %q not found in database %q", id, dbID)
		}
		return nil, err
	}
	if _, isDelete := cmd.(database.DeleteCollection); isDelete {
		return nil, nil
	}
	return h.collectionAfterWrite(project, dbID, id)
}

func (h *databasesHandler) UpdateCollection(ctx context.Context, req *cairnv1.UpdateCollectionRequest) (*cairnv1.UpdateCollectionResponse, error) {
	cmd := database.UpdateCollection{Name: req.Name, DocumentSecurity: req.DocumentSecurity, Enabled: req.Enabled, Now: h.log.Now()}
	if p := req.GetPermissions(); p != nil {
		vals := p.GetValues()
		cmd.Permissions = &vals
	}
	c, err := h.collectionCommand(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), cmd)
	if err != nil {
		return nil, err
	}
	out, err := collectionOut(c)
	return &cairnv1.UpdateCollectionResponse{Collection: out}, err
}

func (h *databasesHandler) DeleteCollection(ctx context.Context, req *cairnv1.DeleteCollectionRequest) (*cairnv1.DeleteCollectionResponse, error) {
	if err := h.checkUnrelated(req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId()); err != nil && !isNotFound(err) {
		return nil, err
	}
	_, err := h.collectionCommand(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), database.DeleteCollection{Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteCollectionResponse{}, nil
}

func findAttribute(c *eventsv1.Collection, key string) (*eventsv1.Attribute, error) {
	for _, a := range c.GetAttributes() {
		if a.GetKey() == key {
			return a, nil
		}
	}
	return nil, domain.Errorf(domain.KindNotFound, "attribute %q not found in collection %q", key, c.GetId())
}

func findIndex(c *eventsv1.Collection, key string) (*eventsv1.Index, error) {
	for _, ix := range c.GetIndexes() {
		if ix.GetKey() == key {
			return ix, nil
		}
	}
	return nil, domain.Errorf(domain.KindNotFound, "index %q not found in collection %q", key, c.GetId())
}

func (h *databasesHandler) CreateAttribute(ctx context.Context, req *cairnv1.CreateAttributeRequest) (*cairnv1.CreateAttributeResponse, error) {
	a, err := attributeIn(req.GetAttribute())
	if err != nil {
		return nil, err
	}
	var c *eventsv1.Collection
	if a.Type == database.TypeRelationship {
		c, err = h.createRelationship(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), a)
	} else {
		c, err = h.collectionCommand(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), database.CreateAttribute{Attribute: a, Now: h.log.Now()})
	}
	if err != nil {
		return nil, requestField(err, "attribute.", attributeFields(a.Type))
	}
	stored, err := findAttribute(c, a.Key)
	if err != nil {
		return nil, err
	}
	out, err := attributeOut(stored)
	return &cairnv1.CreateAttributeResponse{Attribute: out}, err
}

func (h *databasesHandler) GetAttribute(ctx context.Context, req *cairnv1.GetAttributeRequest) (*cairnv1.GetAttributeResponse, error) {
	_, c, err := h.loadCollection(req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	a, err := findAttribute(c, req.GetKey())
	if err != nil {
		return nil, err
	}
	out, err := attributeOut(a)
	return &cairnv1.GetAttributeResponse{Attribute: out}, err
}

func (h *databasesHandler) ListAttributes(ctx context.Context, req *cairnv1.ListAttributesRequest) (*cairnv1.ListAttributesResponse, error) {
	_, c, err := h.loadCollection(req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	out, err := collectionOut(c)
	if err != nil {
		return nil, err
	}
	return &cairnv1.ListAttributesResponse{Attributes: out.GetAttributes()}, nil
}

func (h *databasesHandler) DeleteAttribute(ctx context.Context, req *cairnv1.DeleteAttributeRequest) (*cairnv1.DeleteAttributeResponse, error) {
	if done, err := h.deleteRelationship(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), req.GetKey()); done || err != nil {
		return &cairnv1.DeleteAttributeResponse{}, err
	}
	_, err := h.collectionCommand(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), database.DeleteAttribute{Key: req.GetKey(), Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteAttributeResponse{}, nil
}

func (h *databasesHandler) CreateIndex(ctx context.Context, req *cairnv1.CreateIndexRequest) (*cairnv1.CreateIndexResponse, error) {
	ix, err := indexIn(req.GetIndex())
	if err != nil {
		return nil, err
	}
	ix.UID = h.log.NewID()
	c, err := h.collectionCommand(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), database.CreateIndex{Index: ix, Now: h.log.Now()})
	if err != nil {
		return nil, requestField(err, "index.", map[string]string{"orders": "desc"})
	}
	stored, err := findIndex(c, ix.Key)
	if err != nil {
		return nil, err
	}
	return &cairnv1.CreateIndexResponse{Index: indexOut(stored)}, nil
}

func (h *databasesHandler) GetIndex(ctx context.Context, req *cairnv1.GetIndexRequest) (*cairnv1.GetIndexResponse, error) {
	_, c, err := h.loadCollection(req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	ix, err := findIndex(c, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetIndexResponse{Index: indexOut(ix)}, nil
}

func (h *databasesHandler) ListIndexes(ctx context.Context, req *cairnv1.ListIndexesRequest) (*cairnv1.ListIndexesResponse, error) {
	_, c, err := h.loadCollection(req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListIndexesResponse{}
	for _, ix := range c.GetIndexes() {
		res.Indexes = append(res.Indexes, indexOut(ix))
	}
	return res, nil
}

func (h *databasesHandler) DeleteIndex(ctx context.Context, req *cairnv1.DeleteIndexRequest) (*cairnv1.DeleteIndexResponse, error) {
	_, err := h.collectionCommand(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId(), database.DeleteIndex{Key: req.GetKey(), Now: h.log.Now()})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteIndexResponse{}, nil
}
