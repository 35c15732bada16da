package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Transaction statuses.
const (
	txOpen       = "open"
	txCommitted  = "committed"
	txRolledBack = "rolled_back"
	txExpired    = "expired"
)

// DefaultTransactionTTL is how long an uncommitted transaction lives.
const DefaultTransactionTTL = 5 * time.Minute

// txOwner names the principal a transaction belongs to.
func txOwner(p access.Principal) string {
	switch p.Kind {
	case access.Operator, access.Member:
		if p.ID != "" {
			return "operator:" + p.ID
		}
		return "operator"
	case access.APIKey:
		return "key:" + p.ID
	case access.User:
		return "user:" + p.ID
	}
	return ""
}

func (h *databasesHandler) txOut(t *eventsv1.Transaction) *cairnv1.Transaction {
	status := t.GetStatus()
	if status == txOpen && h.now().After(t.GetExpiresAt().AsTime()) {
		status = txExpired
	}
	return &cairnv1.Transaction{Id: t.GetId(), ProjectId: t.GetProjectId(), Status: status, Operations: t.GetOperations(),
		MaxOperations: t.GetMaxOperations(), CreatedAt: t.GetCreatedAt(), ExpiresAt: t.GetExpiresAt()}
}

// lastTx is the transaction state a last event holds.
func lastTx(last *eventsv1.Envelope) *eventsv1.Transaction {
	switch p := last.GetPayload().(type) {
	case *eventsv1.Envelope_TransactionCreated:
		return p.TransactionCreated.GetTransaction()
	case *eventsv1.Envelope_TransactionStaged:
		return p.TransactionStaged.GetTransaction()
	case *eventsv1.Envelope_TransactionCommitted:
		return p.TransactionCommitted.GetTransaction()
	case *eventsv1.Envelope_TransactionRolledBack:
		return p.TransactionRolledBack.GetTransaction()
	}
	return nil
}

// openTx checks that t is the caller's, open and unexpired.
func (h *databasesHandler) openTx(ctx context.Context, t *eventsv1.Transaction, id string) error {
	switch {
	case t == nil || t.GetOwner() != txOwner(principal(ctx)):
		return domain.Errorf(domain.KindNotFound, "transaction %q not found", id)
	case t.GetStatus() != txOpen:
		return domain.Errorf(domain.KindFailedPrecondition, "transaction %q is %s", id, t.GetStatus())
	case h.now().After(t.GetExpiresAt().AsTime()):
		return domain.Errorf(domain.KindFailedPrecondition, "transaction %q expired at %s", id, t.GetExpiresAt().AsTime().Format(time.RFC3339))
	}
	return nil
}

func (h *databasesHandler) CreateTransaction(ctx context.Context, req *cairnv1.CreateTransactionRequest) (*cairnv1.CreateTransactionResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	ttl := DefaultTransactionTTL
	if req.GetTtlSeconds() > 0 {
		ttl = time.Duration(req.GetTtlSeconds()) * time.Second
	}
	now := h.log.Now()
	t := &eventsv1.Transaction{Id: h.log.NewID(), ProjectId: req.GetProjectId(), Owner: txOwner(principal(ctx)), Status: txOpen,
		MaxOperations: uint32(h.maxBatch()), CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(ttl)), UpdatedAt: timestamppb.New(now)}
	res, err := h.log.Write(ctx, eventlog.TransactionAggregate(req.GetProjectId(), t.GetId()), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		if last != nil {
			return nil, domain.Errorf(domain.KindAlreadyExists, "transaction %q exists", t.GetId())
		}
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TransactionCreated{TransactionCreated: &eventsv1.TransactionCreated{Transaction: t}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.CreateTransactionResponse{Transaction: h.txOut(t)}, nil
}

func (h *databasesHandler) GetTransaction(ctx context.Context, req *cairnv1.GetTransactionRequest) (*cairnv1.GetTransactionResponse, error) {
	t, err := h.reads.Transaction(req.GetProjectId(), req.GetTransactionId())
	if err == nil && t.GetOwner() != txOwner(principal(ctx)) {
		err = errNotFound // another caller's transaction does not exist for this one
	}
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("transaction %q", req.GetTransactionId()))
	}
	return &cairnv1.GetTransactionResponse{Transaction: h.txOut(t)}, nil
}

// stage appends operations to an open transaction. A document is written
// at most once per transaction (a batch cannot expect the same subject
// twice), and read at most once.
func (h *databasesHandler) stage(ctx context.Context, project, id string, ops []*eventsv1.TransactionOperation) (*eventsv1.Transaction, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var added int64
	for _, op := range ops {
		added += int64(len(op.GetDataJson()))
	}
	var out *eventsv1.Transaction
	res, err := h.log.Write(ctx, eventlog.TransactionAggregate(project, id), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		t := lastTx(last)
		if err := h.openTx(ctx, t, id); err != nil {
			return nil, err
		}
		if n := int(t.GetOperations()) + len(ops); n > int(t.GetMaxOperations()) {
			return nil, domain.FieldError("operations", "a transaction holds at most %d operations; this would make %d", t.GetMaxOperations(), n)
		}
		if err := h.checkStagedBytes(project, t, added); err != nil {
			return nil, err
		}
		staged, err := h.reads.TransactionOperations(project, id)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, op := range append(staged, ops...) {
			read := op.GetAction() == "read"
			k := fmt.Sprintf("%v/%s/%s/%s", read, op.GetDatabaseId(), op.GetCollectionId(), op.GetDocumentId())
			if seen[k] {
				if read {
					return nil, nil // read already recorded
				}
				return nil, domain.FieldError("operations", "document %q of collection %q is written twice in this transaction", op.GetDocumentId(), op.GetCollectionId())
			}
			seen[k] = true
		}
		next := proto.Clone(t).(*eventsv1.Transaction)
		next.Operations += uint32(len(ops))
		next.StagedBytes += uint64(added)
		next.UpdatedAt = timestamppb.New(h.log.Now())
		out = next
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TransactionStaged{TransactionStaged: &eventsv1.TransactionStaged{Transaction: next, Operations: ops}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	if out == nil {
		return h.reads.Transaction(project, id)
	}
	return out, nil
}

// checkStagedBytes refuses staging added bytes of document data into t
// past the transaction's limit or the project's (over its open, unexpired
// transactions, as the read model has them: concurrent stagers each check
// against what they saw).
func (h *databasesHandler) checkStagedBytes(project string, t *eventsv1.Transaction, added int64) error {
	if added == 0 {
		return nil
	}
	maxTx, maxProject := cmp.Or(h.cfg.MaxTransactionBytes, DefaultMaxTransactionBytes), cmp.Or(h.cfg.MaxProjectTransactionBytes, DefaultMaxProjectTransactionBytes)
	if n := int64(t.GetStagedBytes()) + added; n > maxTx {
		return domain.Errorf(domain.KindResourceExhausted, "a transaction stages at most %d bytes of document data (--max-transaction-bytes); it holds %d and these operations add %d", maxTx, t.GetStagedBytes(), added)
	}
	open, err := h.reads.OpenTransactions(project)
	if err != nil {
		return err
	}
	used := int64(t.GetStagedBytes())
	now := h.now()
	for _, o := range open {
		if o.GetId() != t.GetId() && now.Before(o.GetExpiresAt().AsTime()) {
			used += int64(o.GetStagedBytes())
		}
	}
	if used+added > maxProject {
		return domain.Errorf(domain.KindResourceExhausted, "a project's open transactions stage at most %d bytes of document data (--max-project-transaction-bytes); they hold %d and these operations add %d: commit or roll back some", maxProject, used, added)
	}
	return nil
}

// recordRead remembers the version of a document read in a transaction.
func (h *databasesHandler) recordRead(ctx context.Context, cl *coll, txID string, d *eventsv1.Document) error {
	_, err := h.stage(ctx, cl.project, txID, []*eventsv1.TransactionOperation{{Action: "read", DatabaseId: d.GetDatabaseId(),
		CollectionId: d.GetCollectionId(), DocumentId: d.GetId(), Version: d.GetVersion()}})
	return err
}

func dataJSON(m map[string]any) (string, error) {
	if m == nil {
		return "", nil
	}
	// As database.EncodeData: <, > and & unescaped, so staged bytes are
	// counted close to what the document will store.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", domain.FieldError("data", "not representable as JSON: %v", err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

func (h *databasesHandler) StageOperations(ctx context.Context, req *cairnv1.StageOperationsRequest) (*cairnv1.StageOperationsResponse, error) {
	ops := make([]*eventsv1.TransactionOperation, len(req.GetOperations()))
	for i, op := range req.GetOperations() {
		o := &eventsv1.TransactionOperation{DatabaseId: op.GetDatabaseId(), CollectionId: op.GetCollectionId()}
		var data map[string]any
		var perms *cairnv1.Permissions
		switch {
		case op.GetCreate() != nil:
			c := op.GetCreate()
			o.Action, o.DocumentId, data, perms = string(database.DocCreate), h.newID(c.GetDocumentId()), c.GetData().AsMap(), c.GetPermissions()
		case op.GetUpdate() != nil:
			u := op.GetUpdate()
			o.Action, o.DocumentId, data, perms = string(database.DocUpdate), u.GetDocumentId(), u.GetData().AsMap(), u.GetPermissions()
		case op.GetUpsert() != nil:
			u := op.GetUpsert()
			o.Action, o.DocumentId, data, perms = string(database.DocUpsert), u.GetDocumentId(), u.GetData().AsMap(), u.GetPermissions()
		case op.GetDelete() != "":
			o.Action, o.DocumentId = string(database.DocDelete), op.GetDelete()
		case op.GetIncrement() != nil:
			in := op.GetIncrement()
			o.Action, o.DocumentId, o.Attribute, o.Delta, o.Min, o.Max = string(database.DocIncrement), in.GetDocumentId(), in.GetAttribute(), in.GetDelta(), in.Min, in.Max
		}
		js, err := dataJSON(data)
		if err != nil {
			return nil, err
		}
		o.DataJson = js
		if perms != nil {
			o.HasPermissions, o.Permissions = true, perms.GetValues()
		}
		ops[i] = o
	}
	t, err := h.stage(ctx, req.GetProjectId(), req.GetTransactionId(), ops)
	if err != nil {
		return nil, err
	}
	return &cairnv1.StageOperationsResponse{Transaction: h.txOut(t)}, nil
}

// opCommand turns a staged operation back into a command.
func (h *databasesHandler) opCommand(cl *coll, op *eventsv1.TransactionOperation) (database.DocCommand, error) {
	cmd := database.DocCommand{Action: database.DocAction(op.GetAction()), ID: op.GetDocumentId(), Attribute: op.GetAttribute(),
		Delta: op.GetDelta(), Min: op.Min, Max: op.Max, Change: "transaction", Now: h.log.Now(),
		HasPermissions: op.GetHasPermissions(), Permissions: op.GetPermissions()}
	if op.GetDataJson() != "" {
		d := json.NewDecoder(strings.NewReader(op.GetDataJson()))
		d.UseNumber()
		if err := d.Decode(&cmd.Data); err != nil {
			return cmd, fmt.Errorf("staged data of %s: %w", op.GetDocumentId(), err)
		}
	}
	cmd.DefaultPermissions = cl.creatorPermissions()
	return cmd, nil
}

// CommitTransaction appends the transaction's end and every document
// change in one atomic batch: each document's message expects the
// sequence its decision read, so a document changed meanwhile fails the
// whole commit (Aborted); a document only read is checked against the
// version read when the commit is decided.
func (h *databasesHandler) CommitTransaction(ctx context.Context, req *cairnv1.CommitTransactionRequest) (*cairnv1.CommitTransactionResponse, error) {
	project, id := req.GetProjectId(), req.GetTransactionId()
	t, err := h.reads.Transaction(project, id)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("transaction %q", id))
	}
	if err := h.openTx(ctx, t, id); err != nil {
		return nil, err
	}
	ops, err := h.reads.TransactionOperations(project, id)
	if err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var done *eventsv1.Transaction
	changes := []eventlog.Change{{Agg: eventlog.TransactionAggregate(project, id), Decide: func(last *eventsv1.Envelope, _ uint64) ([]*eventsv1.Envelope, error) {
		cur := lastTx(last)
		if err := h.openTx(ctx, cur, id); err != nil {
			return nil, err
		}
		if int(cur.GetOperations()) != len(ops) {
			return nil, domain.Errorf(domain.KindConflict, "transaction %q was staged into while committing; retry", id)
		}
		done = proto.Clone(cur).(*eventsv1.Transaction)
		done.Status, done.UpdatedAt = txCommitted, timestamppb.New(h.log.Now())
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TransactionCommitted{TransactionCommitted: &eventsv1.TransactionCommitted{Transaction: done}}}}, nil
	}}}
	docs, written, err := h.txDocumentChanges(ctx, project, ops)
	if err != nil {
		return nil, err
	}
	changes = append(changes, docs...)
	res, err := h.log.WriteAll(ctx, meta, changes)
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	out := &cairnv1.CommitTransactionResponse{}
	if done != nil {
		out.Transaction = h.txOut(done)
	}
	for _, w := range written {
		d, err := h.reads.Document(project, w.cl.c, w.id)
		if err != nil {
			continue // deleted by the commit
		}
		doc, err := docOut(w.cl, d, nil, nil)
		if err != nil {
			return nil, err
		}
		out.Documents = append(out.Documents, doc)
	}
	return out, nil
}

func (h *databasesHandler) RollbackTransaction(ctx context.Context, req *cairnv1.RollbackTransactionRequest) (*cairnv1.RollbackTransactionResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	project, id := req.GetProjectId(), req.GetTransactionId()
	var done *eventsv1.Transaction
	res, err := h.log.Write(ctx, eventlog.TransactionAggregate(project, id), meta, func(last *eventsv1.Envelope) ([]*eventsv1.Envelope, error) {
		t := lastTx(last)
		if t == nil || t.GetOwner() != txOwner(principal(ctx)) {
			return nil, domain.Errorf(domain.KindNotFound, "transaction %q not found", id)
		}
		if t.GetStatus() != txOpen {
			return nil, domain.Errorf(domain.KindFailedPrecondition, "transaction %q is %s", id, t.GetStatus())
		}
		done = proto.Clone(t).(*eventsv1.Transaction)
		done.Status, done.UpdatedAt = txRolledBack, timestamppb.New(h.log.Now())
		return []*eventsv1.Envelope{{Payload: &eventsv1.Envelope_TransactionRolledBack{TransactionRolledBack: &eventsv1.TransactionRolledBack{Transaction: done}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.RollbackTransactionResponse{Transaction: h.txOut(done)}, nil
}
