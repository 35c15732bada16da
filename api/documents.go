package api

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/domain/permission"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// documentReads is what documents need of the read models.
type documentReads interface {
	Database(project, id string) (*eventsv1.Database, error)
	Collection(project, db, id string) (*eventsv1.Collection, error)
	Document(project string, c *eventsv1.Collection, id string) (*eventsv1.Document, error)
	Schema(c *eventsv1.Collection) (*database.Schema, error)
	Query(project string, c *eventsv1.Collection, q *query.Query, opt projections.QueryOptions) (projections.QueryResult, error)
	UniqueHolder(project string, c *eventsv1.Collection, ix database.Index, fields map[string]any, self string) (string, bool, error)
	Transaction(project, id string) (*eventsv1.Transaction, error)
	TransactionOperations(project, id string) ([]*eventsv1.TransactionOperation, error)
	OpenTransactions(project string) ([]*eventsv1.Transaction, error)
}

// Database limits (Config): zero means the default.
const (
	DefaultMaxQueryLimit      = 100
	DefaultMaxBatchOperations = 100
	// Staged document data (data_json bytes) one transaction may hold, and
	// all open transactions of a project: staged writes are held in the
	// read model and decided together at commit, so unbounded they let a
	// few transactions of large documents take gigabytes.
	DefaultMaxTransactionBytes        = 4 << 20
	DefaultMaxProjectTransactionBytes = 32 << 20
)

// subject resolves the caller into the roles permissions are checked
// against: a user's verification, teams (with their roles) and labels are
// read from the read model at the time of the call, so a revoked
// membership takes effect at once.
func (s *Server) subject(project string, p access.Principal) (permission.Subject, error) {
	switch p.Kind {
	case access.Operator:
		return permission.Subject{Kind: permission.Operator}, nil
	case access.APIKey, access.Member:
		// An operator account acts as a key with its role's scopes would.
		return permission.Subject{Kind: permission.APIKey}, nil
	case access.User:
		u, err := s.reads.User(project, p.ID)
		if err != nil {
			if errors.Is(err, errNotFound) {
				return permission.Subject{}, domain.Errorf(domain.KindUnauthenticated, "the session's user no longer exists")
			}
			return permission.Subject{}, err
		}
		ms, err := s.reads.ListUserMemberships(project, p.ID)
		if err != nil {
			return permission.Subject{}, err
		}
		s := permission.Subject{Kind: permission.User, UserID: p.ID, Verified: u.GetEmailVerified(), Labels: u.GetLabels()}
		for _, m := range ms {
			s.Teams = append(s.Teams, permission.Membership{TeamID: m.GetTeamId(), MembershipID: m.GetId(), Roles: m.GetRoles()})
		}
		return s, nil
	}
	return permission.Subject{Kind: permission.Guest}, nil
}

// coll is an open collection and who is asking.
type coll struct {
	project string
	c       *eventsv1.Collection
	schema  *database.Schema
	perms   []permission.Permission
	subj    permission.Subject
}

func (cl *coll) server() bool {
	return cl.subj.Kind == permission.APIKey || cl.subj.Kind == permission.Operator
}

// collMeta is an opened collection as the read models hold it, kept in
// the metaCache: shared, never modified.
type collMeta struct {
	db     *eventsv1.Database
	c      *eventsv1.Collection
	schema *database.Schema
	perms  []permission.Permission
}

// collMeta returns the collection with its database, schema and parsed
// permissions, through the metaCache.
func (h *databasesHandler) collMeta(project, dbID, collID string) (*collMeta, error) {
	return cached(h.metas, metaKey{kind: 'c', project: project, id1: dbID, id2: collID}, func() (*collMeta, error) {
		db, c, err := h.loadCollection(project, dbID, collID)
		if err != nil {
			return nil, err
		}
		m := &collMeta{db: db, c: c}
		if m.schema, err = h.reads.Schema(c); err != nil {
			return nil, err
		}
		if m.perms, err = permission.ParsePermissions(c.GetPermissions()); err != nil {
			return nil, fmt.Errorf("stored permissions of collection %s: %w", collID, err)
		}
		return m, nil
	})
}

// open loads a live collection for the caller. End users see neither
// disabled databases nor disabled collections.
func (h *databasesHandler) open(ctx context.Context, project, dbID, collID string) (*coll, error) {
	subj, err := h.subject(project, principal(ctx))
	if err != nil {
		return nil, err
	}
	server := subj.Kind == permission.APIKey || subj.Kind == permission.Operator
	m, err := h.collMeta(project, dbID, collID)
	if err != nil {
		if !server && errors.Is(err, errNotFound) {
			// A missing database answers as a missing collection (hidden.go).
			return nil, collectionNotFound(dbID, collID)
		}
		return nil, err
	}
	cl := &coll{project: project, c: m.c, schema: m.schema, perms: m.perms, subj: subj}
	if !cl.server() && (!m.db.GetEnabled() || !m.c.GetEnabled()) {
		return nil, collectionNotFound(dbID, collID)
	}
	if !cl.server() && !sees(subj, cl.perms, m.c.GetDocumentSecurity()) {
		return nil, collectionNotFound(dbID, collID) // hidden.go
	}
	return cl, nil
}

// can reports whether the caller may act on d (nil: on the collection).
func (cl *coll) can(a permission.Action, d *eventsv1.Document) bool {
	var item []permission.Permission
	if d != nil && cl.c.GetDocumentSecurity() {
		item, _ = permission.ParsePermissions(d.GetPermissions())
	}
	return permission.Check(cl.subj, a, cl.perms, item, cl.c.GetDocumentSecurity())
}

// readFilter is the permission part of a read: nil when the caller may
// read the whole collection, a per-document test with document security,
// PermissionDenied otherwise.
func (cl *coll) readFilter() (func(*eventsv1.Document) bool, error) {
	if permission.Check(cl.subj, permission.Read, cl.perms, nil, false) {
		return nil, nil
	}
	if !cl.c.GetDocumentSecurity() {
		return nil, domain.Errorf(domain.KindPermissionDenied, "no permission to read collection %q", cl.c.GetId())
	}
	return func(d *eventsv1.Document) bool { return cl.can(permission.Read, d) }, nil
}

// docOut converts a stored document for a response; sel limits the data
// to some attributes.
func docOut(cl *coll, d *eventsv1.Document, fields map[string]any, sel []string) (*cairnv1.Document, error) {
	if fields == nil {
		// The data alone: the system attributes Fields adds are not output.
		var keep func(string) bool
		if len(sel) > 0 {
			keep = func(k string) bool { return slices.Contains(sel, k) }
		}
		var err error
		if fields, err = cl.schema.DecodeDataOnly(d.GetDataJson(), d.GetSchemaVersion(), keep); err != nil {
			return nil, fmt.Errorf("document %s: %w", d.GetId(), err)
		}
	}
	// structpb.NewStruct's loop, without an intermediate map.
	st := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(fields))}
	for k, v := range fields {
		if strings.HasPrefix(k, "$") || (len(sel) > 0 && !slices.Contains(sel, k)) {
			continue
		}
		if !utf8.ValidString(k) {
			return nil, fmt.Errorf("document %s: invalid UTF-8 in string: %q", d.GetId(), k)
		}
		val, err := structpb.NewValue(database.ToJSON(v))
		if err != nil {
			return nil, fmt.Errorf("document %s: %w", d.GetId(), err)
		}
		st.Fields[k] = val
	}
	return &cairnv1.Document{Id: d.GetId(), ProjectId: d.GetProjectId(), DatabaseId: d.GetDatabaseId(), CollectionId: d.GetCollectionId(),
		Data: st, Permissions: d.GetPermissions(), CreatedAt: d.GetCreatedAt(), UpdatedAt: d.GetUpdatedAt(),
		Sequence: d.GetSequence(), Version: d.GetVersion()}, nil
}

// docCheck authorizes one command against the document's current state.
func (cl *coll) docCheck(cmd database.DocCommand, cur *eventsv1.Document) error {
	if cl.server() {
		return nil
	}
	action := cmd.Action
	if action == database.DocUpsert {
		action = database.DocCreate
		if cur != nil {
			action = database.DocUpdate
		}
	}
	var ok bool
	switch action {
	case database.DocCreate:
		ok = cl.can(permission.Create, nil)
	case database.DocDelete:
		ok = cl.can(permission.Delete, cur)
	default:
		ok = cl.can(permission.Update, cur)
	}
	if !ok {
		if cur != nil && !cl.can(permission.Read, cur) {
			return domain.Errorf(domain.KindNotFound, "document %q not found", cmd.ID)
		}
		return domain.Errorf(domain.KindPermissionDenied, "no permission to %s documents of collection %q", action, cl.c.GetId())
	}
	if cmd.HasPermissions {
		perms, err := permission.ParsePermissions(cmd.Permissions)
		if err != nil {
			return err
		}
		return permission.CanGrant(cl.subj, perms)
	}
	return nil
}

// change is the write of one command as part of a batch: authorize on the
// fresh state, decide, and check unique values against documents that
// hold them without a claim (written before the index existed).
func (h *databasesHandler) change(cl *coll, cmd database.DocCommand, extra func(cur *eventsv1.Document) error) eventlog.Change {
	c := cl.c
	return eventlog.Change{
		Agg: eventlog.DocumentAggregate(cl.project, c.GetDatabaseId(), c.GetId(), cmd.ID),
		// A create rarely meets an existing document: skip reading it (the
		// append refuses it if one exists, and the create is decided again).
		New: cmd.Action == database.DocCreate && extra == nil,
		Decide: func(last *eventsv1.Envelope, lastSeq uint64) ([]*eventsv1.Envelope, error) {
			cur := database.CurrentDocument(c, last, lastSeq)
			if extra != nil {
				if err := extra(cur); err != nil {
					return nil, err
				}
			}
			if err := cl.docCheck(cmd, cur); err != nil {
				return nil, err
			}
			evs, err := database.DecideDocument(c, cl.schema, cur, cmd)
			if err != nil {
				return nil, err
			}
			for _, e := range evs {
				taken := e.GetClaimTaken()
				if taken == nil {
					continue
				}
				if err := h.checkUnclaimed(cl, evs[0], taken); err != nil {
					return nil, err
				}
			}
			return evs, nil
		},
	}
}

// checkUnclaimed refuses a unique value another document holds in the
// read model.
func (h *databasesHandler) checkUnclaimed(cl *coll, ev *eventsv1.Envelope, taken *eventsv1.ClaimTaken) error {
	d := ev.GetDocumentCreated().GetDocument()
	if d == nil {
		d = ev.GetDocumentUpdated().GetDocument()
	}
	ix, ok := cl.uniqueIndex(taken.GetNamespace())
	if !ok || d == nil {
		return nil
	}
	f, err := projections.Fields(cl.schema, d)
	if err != nil {
		return err
	}
	other, held, err := h.reads.UniqueHolder(cl.project, cl.c, ix, f, d.GetId())
	if err != nil || !held {
		return err
	}
	return domain.Errorf(domain.KindAlreadyExists, "unique index %q: document %q already has %s = %s", ix.Key, other, strings.Join(ix.Attributes, ", "), taken.GetValue())
}

func (cl *coll) uniqueIndex(ns string) (database.Index, bool) {
	for _, ix := range cl.schema.Indexes {
		if ix.Type == database.IndexUnique && database.IndexClaimNamespace(ix.UID) == ns {
			return ix, true
		}
	}
	return database.Index{}, false
}

// explainClaim turns the write path's claim conflict into one naming the
// unique index.
func (cl *coll) explainClaim(err error) error {
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindAlreadyExists || !strings.HasPrefix(de.Field, "ix") {
		return err
	}
	if ix, ok := cl.uniqueIndex(de.Field); ok {
		return domain.Errorf(domain.KindAlreadyExists, "unique index %q: another document already has this %s", ix.Key, strings.Join(ix.Attributes, ", "))
	}
	return err
}

// write appends the commands' events in one atomic batch and returns the
// documents as the read model then holds them (nil for deleted ones).
func (h *databasesHandler) write(ctx context.Context, cl *coll, cmds []database.DocCommand, extra func(i int, cur *eventsv1.Document) error) ([]*eventsv1.Document, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	rel, err := h.planRelations(ctx, cl, cmds)
	if err != nil {
		return nil, err
	}
	changes := make([]eventlog.Change, len(cmds))
	for i, cmd := range cmds {
		var ex func(*eventsv1.Document) error
		if extra != nil || rel != nil {
			ex = func(cur *eventsv1.Document) error {
				if rel != nil {
					if err := rel.guards[i](cur); err != nil {
						return err
					}
				}
				if extra == nil {
					return nil
				}
				return extra(i, cur)
			}
		}
		changes[i] = h.change(cl, cmd, ex)
	}
	if rel != nil {
		changes = append(changes, rel.changes...)
	}
	res, err := h.log.WriteAll(ctx, meta, changes)
	if err != nil {
		return nil, cl.explainClaim(err)
	}
	setSeq(ctx, res.Seq)
	created := createdDocuments(cl, res)
	out := make([]*eventsv1.Document, len(cmds))
	for i, cmd := range cmds {
		if d := created[cmd.ID]; d != nil {
			out[i] = d
			continue
		}
		d, err := h.reads.Document(cl.project, cl.c, cmd.ID)
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// createdDocuments returns the documents res created in cl, by id, as the
// read model holds them once applied: the event's document with the
// sequence and version the projector gives a new one (applyDocument). The
// write has been applied when it returns, so answering from the events
// saves reading each document back; TestCreateAnswerIsRead compares them.
// Updates are read back: their stored sequence comes from the read model.
func createdDocuments(cl *coll, res eventlog.Result) map[string]*eventsv1.Document {
	var out map[string]*eventsv1.Document
	first := res.Seq - uint64(len(res.Events)-1) // an atomic batch is contiguous
	for i, ev := range res.Events {
		d := ev.GetDocumentCreated().GetDocument()
		if d == nil || d.GetCollectionUid() != cl.c.GetUid() {
			continue
		}
		// The events are this write's own copies (or decoded for it): set
		// in place.
		seq := first + uint64(i)
		d.Version = seq
		if d.GetSequence() == 0 {
			d.Sequence = seq
		}
		if out == nil {
			out = make(map[string]*eventsv1.Document, len(res.Events))
		}
		out[d.GetId()] = d
	}
	return out
}

// createCommand builds the create of one input.
func (h *databasesHandler) createCommand(cl *coll, in *cairnv1.DocumentInput) database.DocCommand {
	cmd := database.DocCommand{Action: database.DocCreate, ID: h.newID(in.GetDocumentId()), Data: in.GetData().AsMap(), Now: h.log.Now()}
	if in.GetPermissions() != nil {
		cmd.HasPermissions, cmd.Permissions = true, in.GetPermissions().GetValues()
	} else {
		cmd.DefaultPermissions = cl.creatorPermissions()
	}
	return cmd
}

// creatorPermissions are what a document a user creates without
// permissions gets, as in Appwrite: its creator may read, update and
// delete it. Servers' documents get none.
func (cl *coll) creatorPermissions() []string {
	if cl.subj.Kind != permission.User {
		return nil
	}
	u := "user:" + cl.subj.UserID
	return []string{`read("` + u + `")`, `update("` + u + `")`, `delete("` + u + `")`}
}

func (h *databasesHandler) CreateDocument(ctx context.Context, req *cairnv1.CreateDocumentRequest) (*cairnv1.CreateDocumentResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	docs, err := h.write(ctx, cl, []database.DocCommand{h.createCommand(cl, req.GetDocument())}, nil)
	if err != nil {
		return nil, err
	}
	out, err := docOut(cl, docs[0], nil, nil)
	return &cairnv1.CreateDocumentResponse{Document: out}, err
}

func (h *databasesHandler) GetDocument(ctx context.Context, req *cairnv1.GetDocumentRequest) (*cairnv1.GetDocumentResponse, error) {
	if req.GetTransactionId() != "" && edgeOf(ctx).method == http.MethodGet {
		// A read inside a transaction is recorded (an event): no GET, which
		// a page of another site can make a browser send.
		return nil, domain.FieldError("transaction_id", "a read inside a transaction is a write; send it with POST, not GET")
	}
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	allow, err := cl.readFilter()
	if err != nil {
		return nil, err
	}
	d, err := h.reads.Document(req.GetProjectId(), cl.c, req.GetDocumentId())
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("document %q", req.GetDocumentId()))
	}
	if allow != nil && !allow(d) {
		return nil, domain.Errorf(domain.KindNotFound, "document %q not found", req.GetDocumentId())
	}
	if req.GetTransactionId() != "" {
		if err := h.recordRead(ctx, cl, req.GetTransactionId(), d); err != nil {
			return nil, err
		}
	}
	sel, rel, err := splitSelect(cl.schema, req.GetSelect())
	if err != nil {
		return nil, err
	}
	out, err := docOut(cl, d, nil, sel)
	if err != nil {
		return nil, err
	}
	if len(rel) > 0 { // the path and the map are allocations a plain get need not make
		budget := maxSelectLoads
		if err := h.expandRelated(ctx, cl, out, nil, rel, []string{cl.c.GetId() + "/" + d.GetId()}, map[string]*coll{}, &budget); err != nil {
			return nil, err
		}
	}
	return &cairnv1.GetDocumentResponse{Document: out}, nil
}

var operators = map[cairnv1.Operator]query.Op{
	cairnv1.Operator_OPERATOR_EQUAL: query.OpEqual, cairnv1.Operator_OPERATOR_NOT_EQUAL: query.OpNotEqual,
	cairnv1.Operator_OPERATOR_LESS_THAN: query.OpLessThan, cairnv1.Operator_OPERATOR_LESS_THAN_EQUAL: query.OpLessThanEqual,
	cairnv1.Operator_OPERATOR_GREATER_THAN: query.OpGreaterThan, cairnv1.Operator_OPERATOR_GREATER_THAN_EQUAL: query.OpGreaterThanEqual,
	cairnv1.Operator_OPERATOR_BETWEEN: query.OpBetween, cairnv1.Operator_OPERATOR_NOT_BETWEEN: query.OpNotBetween,
	cairnv1.Operator_OPERATOR_IS_NULL: query.OpIsNull, cairnv1.Operator_OPERATOR_IS_NOT_NULL: query.OpIsNotNull,
	cairnv1.Operator_OPERATOR_STARTS_WITH: query.OpStartsWith, cairnv1.Operator_OPERATOR_NOT_STARTS_WITH: query.OpNotStartsWith,
	cairnv1.Operator_OPERATOR_ENDS_WITH: query.OpEndsWith, cairnv1.Operator_OPERATOR_NOT_ENDS_WITH: query.OpNotEndsWith,
	cairnv1.Operator_OPERATOR_CONTAINS: query.OpContains, cairnv1.Operator_OPERATOR_NOT_CONTAINS: query.OpNotContains,
	cairnv1.Operator_OPERATOR_SEARCH: query.OpSearch, cairnv1.Operator_OPERATOR_NOT_SEARCH: query.OpNotSearch,
	cairnv1.Operator_OPERATOR_AND: query.OpAnd, cairnv1.Operator_OPERATOR_OR: query.OpOr, cairnv1.Operator_OPERATOR_EXISTS: query.OpExists, cairnv1.Operator_OPERATOR_NOT_EXISTS: query.OpNotExists,
	cairnv1.Operator_OPERATOR_CONTAINS_ANY: query.OpContainsAny, cairnv1.Operator_OPERATOR_CONTAINS_ALL: query.OpContainsAll,
	cairnv1.Operator_OPERATOR_REGEX:          query.OpRegex,
	cairnv1.Operator_OPERATOR_CREATED_BEFORE: query.OpCreatedBefore, cairnv1.Operator_OPERATOR_CREATED_AFTER: query.OpCreatedAfter,
	cairnv1.Operator_OPERATOR_CREATED_BETWEEN: query.OpCreatedBetween,
	cairnv1.Operator_OPERATOR_UPDATED_BEFORE:  query.OpUpdatedBefore, cairnv1.Operator_OPERATOR_UPDATED_AFTER: query.OpUpdatedAfter,
	cairnv1.Operator_OPERATOR_UPDATED_BETWEEN: query.OpUpdatedBetween,
	cairnv1.Operator_OPERATOR_DISTANCE_EQUAL:  query.OpDistanceEqual, cairnv1.Operator_OPERATOR_DISTANCE_NOT_EQUAL: query.OpDistanceNotEqual,
	cairnv1.Operator_OPERATOR_DISTANCE_GREATER_THAN: query.OpDistanceGreaterThan, cairnv1.Operator_OPERATOR_DISTANCE_LESS_THAN: query.OpDistanceLessThan,
	cairnv1.Operator_OPERATOR_INTERSECTS: query.OpIntersects, cairnv1.Operator_OPERATOR_NOT_INTERSECTS: query.OpNotIntersects,
	cairnv1.Operator_OPERATOR_ELEM_MATCH: query.OpElemMatch,
}

// ordersIn converts orders; an unseeded random order gets a seed of its
// own, so it differs from request to request as Appwrite's does.
func ordersIn(in []*cairnv1.Order) []query.Order {
	var out []query.Order
	for _, o := range in {
		qo := query.Order{Attribute: o.GetAttribute(), Desc: o.GetDesc(), Seed: o.GetSeed()}
		if qo.Attribute == query.OrderRandom && qo.Seed == 0 {
			qo.Seed = rand.Uint64()
		}
		out = append(out, qo)
	}
	return out
}

func filtersIn(fs []*cairnv1.Filter) []query.Filter {
	out := make([]query.Filter, len(fs))
	for i, f := range fs {
		out[i] = query.Filter{Op: operators[f.GetOp()], Attribute: f.GetAttribute(), Filters: filtersIn(f.GetFilters())}
		for _, v := range f.GetValues() {
			out[i].Values = append(out[i].Values, v.AsInterface())
		}
	}
	return out
}

func (h *databasesHandler) queryLimits() query.Limits {
	lim := query.DefaultLimits()
	if h.cfg.MaxQueryLimit > 0 {
		lim.MaxLimit = h.cfg.MaxQueryLimit
	}
	return lim
}

func explainOut(e projections.Explain) *cairnv1.Explain {
	return &cairnv1.Explain{Index: e.Index, IndexAttributes: e.IndexAttributes, IndexFilters: e.IndexFilters, KeysScanned: e.KeysScanned,
		DocumentsExamined: e.DocsExamined, SortedInMemory: e.SortedInMemory, DocumentsDenied: e.DocsDenied, Plan: e.Plan}
}

func (h *databasesHandler) ListDocuments(ctx context.Context, req *cairnv1.ListDocumentsRequest) (*cairnv1.ListDocumentsResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	allow, err := cl.readFilter()
	if err != nil {
		return nil, err
	}
	sel, rel, err := splitSelect(cl.schema, req.GetSelect())
	if err != nil {
		return nil, err
	}
	q := &query.Query{Filters: filtersIn(req.GetFilters()), Select: sel, Limit: int(req.GetLimit()), Offset: int(req.GetOffset()),
		CursorAfter: req.GetCursorAfter(), CursorBefore: req.GetCursorBefore()}
	q.Orders = ordersIn(req.GetOrders())
	if err := query.Validate(q, cl.schema, h.queryLimits()); err != nil {
		return nil, err
	}
	total := req.Total == nil || req.GetTotal()
	// Shared: docOut and expandRelated only read the documents.
	res, err := h.reads.Query(req.GetProjectId(), cl.c, q, projections.QueryOptions{Allow: allow, MaxScan: h.cfg.MaxQueryScan, Total: total, Shared: true})
	if err != nil {
		return nil, err
	}
	out := &cairnv1.ListDocumentsResponse{Documents: make([]*cairnv1.Document, 0, len(res.Docs))}
	colls, budget := map[string]*coll{}, maxSelectLoads
	// A cached page's documents, answered whole, have answers kept.
	kept := h.outs != nil && res.Explain.PageCached && len(q.Select) == 0 && len(rel) == 0
	for i, d := range res.Docs {
		if kept {
			if doc := h.outs.get(d); doc != nil {
				out.Documents = append(out.Documents, doc)
				continue
			}
		}
		doc, err := docOut(cl, d, res.Fields[i], q.Select)
		if err != nil {
			return nil, err
		}
		if kept {
			h.outs.put(d, doc)
		}
		if err := h.expandRelated(ctx, cl, doc, nil, rel, []string{cl.c.GetId() + "/" + d.GetId()}, colls, &budget); err != nil {
			return nil, err
		}
		out.Documents = append(out.Documents, doc)
	}
	if total {
		out.Total = &res.Total
		out.TotalCapped = res.TotalCapped
	}
	if req.GetExplain() {
		out.Explain = explainOut(res.Explain)
	}
	return out, nil
}

// updateCommand builds a partial update.
func (h *databasesHandler) updateCommand(action database.DocAction, id string, data *structpb.Struct, perms *cairnv1.Permissions) database.DocCommand {
	cmd := database.DocCommand{Action: action, ID: id, Data: data.AsMap(), Now: h.log.Now(), Change: string(action)}
	if perms != nil {
		cmd.HasPermissions, cmd.Permissions = true, perms.GetValues()
	}
	return cmd
}

func (h *databasesHandler) UpdateDocument(ctx context.Context, req *cairnv1.UpdateDocumentRequest) (*cairnv1.UpdateDocumentResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	cmd := h.updateCommand(database.DocUpdate, req.GetDocumentId(), req.GetData(), req.GetPermissions())
	cmd.ExpectedVersion = req.ExpectedVersion
	docs, err := h.write(ctx, cl, []database.DocCommand{cmd}, nil)
	if err != nil {
		return nil, err
	}
	out, err := docOut(cl, docs[0], nil, nil)
	return &cairnv1.UpdateDocumentResponse{Document: out}, err
}

func (h *databasesHandler) UpsertDocument(ctx context.Context, req *cairnv1.UpsertDocumentRequest) (*cairnv1.UpsertDocumentResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	cmd := h.updateCommand(database.DocUpsert, req.GetDocumentId(), req.GetData(), req.GetPermissions())
	cmd.DefaultPermissions = cl.creatorPermissions() // used only if it creates
	created := false
	docs, err := h.write(ctx, cl, []database.DocCommand{cmd}, func(_ int, cur *eventsv1.Document) error {
		created = cur == nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, err := docOut(cl, docs[0], nil, nil)
	return &cairnv1.UpsertDocumentResponse{Document: out, Created: created}, err
}

func (h *databasesHandler) DeleteDocument(ctx context.Context, req *cairnv1.DeleteDocumentRequest) (*cairnv1.DeleteDocumentResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	cmd := database.DocCommand{Action: database.DocDelete, ID: req.GetDocumentId(), Now: h.log.Now()}
	cmd.ExpectedVersion = req.ExpectedVersion
	if _, err := h.write(ctx, cl, []database.DocCommand{cmd}, nil); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteDocumentResponse{}, nil
}

func (h *databasesHandler) IncrementDocumentAttribute(ctx context.Context, req *cairnv1.IncrementDocumentAttributeRequest) (*cairnv1.IncrementDocumentAttributeResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	cmd := database.DocCommand{Action: database.DocIncrement, ID: req.GetDocumentId(), Attribute: req.GetAttribute(), Delta: req.GetDelta(),
		Change: string(database.DocIncrement), Now: h.log.Now()}
	cmd.Min, cmd.Max = req.Min, req.Max
	docs, err := h.write(ctx, cl, []database.DocCommand{cmd}, nil)
	if err != nil {
		return nil, err
	}
	out, err := docOut(cl, docs[0], nil, nil)
	return &cairnv1.IncrementDocumentAttributeResponse{Document: out}, err
}

func (h *databasesHandler) maxBatch() int {
	if h.cfg.MaxBatchOperations > 0 {
		return h.cfg.MaxBatchOperations
	}
	return DefaultMaxBatchOperations
}

func (h *databasesHandler) CreateDocuments(ctx context.Context, req *cairnv1.CreateDocumentsRequest) (*cairnv1.CreateDocumentsResponse, error) {
	if n := len(req.GetDocuments()); n > h.maxBatch() {
		return nil, domain.FieldError("documents", "at most %d documents per call; got %d", h.maxBatch(), n)
	}
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	cmds := make([]database.DocCommand, len(req.GetDocuments()))
	seen := map[string]bool{}
	for i, in := range req.GetDocuments() {
		cmds[i] = h.createCommand(cl, in)
		if seen[cmds[i].ID] {
			return nil, domain.FieldError(fmt.Sprintf("documents[%d].document_id", i), "%q appears twice", cmds[i].ID)
		}
		seen[cmds[i].ID] = true
	}
	docs, err := h.write(ctx, cl, cmds, nil)
	if err != nil {
		return nil, err
	}
	out := &cairnv1.CreateDocumentsResponse{}
	for _, d := range docs {
		doc, err := docOut(cl, d, nil, nil)
		if err != nil {
			return nil, err
		}
		out.Documents = append(out.Documents, doc)
	}
	return out, nil
}

// matching returns the documents filters match that the caller may write,
// refusing more than the batch limit.
func (h *databasesHandler) matching(cl *coll, filters []*cairnv1.Filter) ([]*eventsv1.Document, error) {
	allow, err := cl.readFilter()
	if err != nil {
		return nil, err
	}
	q := &query.Query{Filters: filtersIn(filters), Limit: h.maxBatch() + 1}
	lim := h.queryLimits()
	lim.MaxLimit = h.maxBatch() + 1
	if err := query.Validate(q, cl.schema, lim); err != nil {
		return nil, err
	}
	res, err := h.reads.Query(cl.project, cl.c, q, projections.QueryOptions{Allow: allow, MaxScan: h.cfg.MaxQueryScan})
	if err != nil {
		return nil, err
	}
	if len(res.Docs) > h.maxBatch() {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "the filters match more than %d documents, the most one call changes atomically; narrow them", h.maxBatch())
	}
	return res.Docs, nil
}

func (h *databasesHandler) UpdateDocuments(ctx context.Context, req *cairnv1.UpdateDocumentsRequest) (*cairnv1.UpdateDocumentsResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	docs, err := h.matching(cl, req.GetFilters())
	if err != nil || len(docs) == 0 {
		return &cairnv1.UpdateDocumentsResponse{}, err
	}
	cmds := make([]database.DocCommand, len(docs))
	for i, d := range docs {
		cmds[i] = h.updateCommand(database.DocUpdate, d.GetId(), req.GetData(), req.GetPermissions())
		cmds[i].Change = "bulk"
	}
	if _, err := h.write(ctx, cl, cmds, nil); err != nil {
		return nil, err
	}
	return &cairnv1.UpdateDocumentsResponse{Updated: int64(len(cmds))}, nil
}

func (h *databasesHandler) DeleteDocuments(ctx context.Context, req *cairnv1.DeleteDocumentsRequest) (*cairnv1.DeleteDocumentsResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	docs, err := h.matching(cl, req.GetFilters())
	if err != nil || len(docs) == 0 {
		return &cairnv1.DeleteDocumentsResponse{}, err
	}
	cmds := make([]database.DocCommand, len(docs))
	for i, d := range docs {
		cmds[i] = database.DocCommand{Action: database.DocDelete, ID: d.GetId(), Now: h.log.Now()}
	}
	if _, err := h.write(ctx, cl, cmds, nil); err != nil {
		return nil, err
	}
	return &cairnv1.DeleteDocumentsResponse{Deleted: int64(len(cmds))}, nil
}

var aggregateFuncs = map[cairnv1.AggregateFunction]query.Func{
	cairnv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT: query.Func("count"), cairnv1.AggregateFunction_AGGREGATE_FUNCTION_SUM: query.Func("sum"),
	cairnv1.AggregateFunction_AGGREGATE_FUNCTION_AVG: query.Func("avg"), cairnv1.AggregateFunction_AGGREGATE_FUNCTION_MIN: query.Func("min"),
	cairnv1.AggregateFunction_AGGREGATE_FUNCTION_MAX: query.Func("max"),
}

func (h *databasesHandler) AggregateDocuments(ctx context.Context, req *cairnv1.AggregateDocumentsRequest) (*cairnv1.AggregateDocumentsResponse, error) {
	cl, err := h.open(ctx, req.GetProjectId(), req.GetDatabaseId(), req.GetCollectionId())
	if err != nil {
		return nil, err
	}
	allow, err := cl.readFilter()
	if err != nil {
		return nil, err
	}
	agg := query.Aggregation{Func: aggregateFuncs[req.GetFunction()], Attribute: req.GetAttribute(), GroupBy: req.GetGroupBy()}
	if err := query.ValidateAggregation(&agg, cl.schema); err != nil {
		return nil, err
	}
	q := &query.Query{Filters: filtersIn(req.GetFilters()), Limit: 1}
	if err := query.Validate(q, cl.schema, h.queryLimits()); err != nil {
		return nil, err
	}
	q.Limit = 0 // every match, bounded by the scan limit
	res, err := h.reads.Query(req.GetProjectId(), cl.c, q, projections.QueryOptions{Allow: allow, MaxScan: h.cfg.MaxQueryScan})
	if err != nil {
		return nil, err
	}
	out := &cairnv1.AggregateDocumentsResponse{}
	for _, g := range query.Aggregate(agg, res.Fields) {
		key, err := structpb.NewValue(database.ToJSON(g.Key))
		if err != nil {
			return nil, err
		}
		val, err := structpb.NewValue(database.ToJSON(g.Value))
		if err != nil {
			return nil, err
		}
		out.Groups = append(out.Groups, &cairnv1.AggregateGroup{Key: key, Count: g.Count, Value: val})
	}
	if req.GetExplain() {
		out.Explain = explainOut(res.Explain)
	}
	return out, nil
}
