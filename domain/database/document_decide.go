package database

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// DocAction is what a document command does.
type DocAction string

// Document actions (also TransactionOperation.action).
const (
	DocCreate    DocAction = "create"
	DocUpdate    DocAction = "update"
	DocUpsert    DocAction = "upsert"
	DocDelete    DocAction = "delete"
	DocIncrement DocAction = "increment"
)

// DocCommand is one write to one document.
type DocCommand struct {
	Action DocAction
	ID     string
	// Data is the input as decoded from JSON (create/upsert: all of it;
	// update: the changed attributes).
	Data map[string]any
	// Permissions replace the document's when HasPermissions; a create
	// without them gets DefaultPermissions.
	Permissions        []string
	HasPermissions     bool
	DefaultPermissions []string
	// Increment: Attribute += Delta, refused beyond Min/Max.
	Attribute string
	Delta     float64
	Min, Max  *float64
	// ExpectedVersion, when set, must be the document's version.
	ExpectedVersion *uint64
	// Change names the update in DocumentUpdated.change.
	Change string
	Now    time.Time
}

// CurrentDocument returns the document state last stands for in
// collection c, or nil: a document of a deleted collection (same id, other
// UID) does not exist. lastSeq sets its version (and its sequence when
// last is its creation).
func CurrentDocument(c *eventsv1.Collection, last *eventsv1.Envelope, lastSeq uint64) *eventsv1.Document {
	var d *eventsv1.Document
	switch p := last.GetPayload().(type) {
	case *eventsv1.Envelope_DocumentCreated:
		d = p.DocumentCreated.GetDocument()
	case *eventsv1.Envelope_DocumentUpdated:
		d = p.DocumentUpdated.GetDocument()
	default:
		return nil
	}
	if d.GetCollectionUid() != c.GetUid() {
		return nil
	}
	d = proto.Clone(d).(*eventsv1.Document)
	d.Version = lastSeq
	if d.GetSequence() == 0 {
		d.Sequence = lastSeq
	}
	return d
}

// DecideDocument decides cmd on the document cur (nil when absent) of
// collection c with schema s: the document event, and the claims of its
// unique index values (taken for new values, released for old ones).
func DecideDocument(c *eventsv1.Collection, s *Schema, cur *eventsv1.Document, cmd DocCommand) ([]*eventsv1.Envelope, error) {
	if cmd.ExpectedVersion != nil && cur.GetVersion() != *cmd.ExpectedVersion {
		return nil, domain.Errorf(domain.KindConflict, "document %q changed: its version is %d, not %d", cmd.ID, cur.GetVersion(), *cmd.ExpectedVersion)
	}
	var base map[string]any
	if cur != nil {
		var err error
		if base, err = s.DecodeData(cur.GetDataJson(), cur.GetSchemaVersion()); err != nil {
			return nil, err
		}
	}
	action := cmd.Action
	switch {
	case action == DocUpsert && cur == nil:
		action = DocCreate
	case action == DocUpsert:
		action = DocUpdate
		base = nil // a replace: absent attributes take their defaults
	}
	switch {
	case action == DocCreate && cur != nil:
		return nil, domain.Errorf(domain.KindAlreadyExists, "document %q already exists", cmd.ID)
	case action != DocCreate && cur == nil:
		return nil, domain.Errorf(domain.KindNotFound, "document %q not found", cmd.ID)
	}
	if action == DocDelete {
		return append([]*eventsv1.Envelope{{Payload: &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: &eventsv1.DocumentDeleted{Document: cur}}}},
			claims(c, s, cur.GetId(), base, nil)...), nil
	}
	input := cmd.Data
	if action == DocIncrement {
		v, err := increment(s, base, cmd)
		if err != nil {
			return nil, err
		}
		input = map[string]any{cmd.Attribute: v}
	}
	data, err := s.Normalize(input, base)
	if err != nil {
		return nil, err
	}
	perms := cmd.DefaultPermissions
	if cur != nil {
		perms = cur.GetPermissions()
	}
	if cmd.HasPermissions {
		parsed, err := permission.ParsePermissions(cmd.Permissions)
		if err != nil {
			return nil, err
		}
		perms = permission.Strings(parsed)
	}
	js, err := EncodeData(data)
	if err != nil {
		return nil, err
	}
	// The exact check: Normalize's estimate does not count escapes.
	if len(js) > MaxDocumentBytes {
		return nil, domain.FieldError("data", "a document holds at most %d bytes as stored (JSON); this one %d", MaxDocumentBytes, len(js))
	}
	now := timestamppb.New(cmd.Now)
	next := &eventsv1.Document{Id: cmd.ID, ProjectId: c.GetProjectId(), DatabaseId: c.GetDatabaseId(), CollectionId: c.GetId(),
		CollectionUid: c.GetUid(), DataJson: js, Permissions: perms, CreatedAt: now, UpdatedAt: now, SchemaVersion: c.GetVersion()}
	var ev *eventsv1.Envelope
	if cur == nil {
		ev = &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: next}}}
	} else {
		next.CreatedAt, next.Sequence = cur.GetCreatedAt(), cur.GetSequence()
		if next.GetDataJson() == cur.GetDataJson() && slices.Equal(next.GetPermissions(), cur.GetPermissions()) && next.GetSchemaVersion() == cur.GetSchemaVersion() {
			return nil, nil // nothing changes
		}
		before := proto.Clone(cur).(*eventsv1.Document)
		before.Version = 0
		ev = &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: next, Before: before, Change: string(cmd.Change)}}}
	}
	return append([]*eventsv1.Envelope{ev}, claims(c, s, cmd.ID, base, data)...), nil
}

// increment returns the attribute's value after adding the delta.
func increment(s *Schema, base map[string]any, cmd DocCommand) (any, error) {
	a, ok := s.schemaAttribute(cmd.Attribute)
	if !ok || a.Array || (a.Type != TypeInteger && a.Type != TypeFloat) {
		return nil, domain.FieldError("attribute", "%q is not a numeric attribute of this collection", cmd.Attribute)
	}
	cur := 0.0
	switch v := base[cmd.Attribute].(type) {
	case int64:
		cur = float64(v)
	case float64:
		cur = v
	}
	if a.Type == TypeInteger && cmd.Delta != math.Trunc(cmd.Delta) {
		return nil, domain.FieldError("delta", "attribute %q is an integer; %v is not", cmd.Attribute, cmd.Delta)
	}
	next := cur + cmd.Delta
	if cmd.Min != nil && next < *cmd.Min {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "attribute %q would become %v, below the minimum %v", cmd.Attribute, next, *cmd.Min)
	}
	if cmd.Max != nil && next > *cmd.Max {
		return nil, domain.Errorf(domain.KindFailedPrecondition, "attribute %q would become %v, above the maximum %v", cmd.Attribute, next, *cmd.Max)
	}
	if a.Type == TypeInteger {
		if i, ok := base[cmd.Attribute].(int64); ok && cmd.Delta >= math.MinInt64 && cmd.Delta <= math.MaxInt64 {
			return i + int64(cmd.Delta), nil // exact for big values
		}
		return int64(next), nil
	}
	return next, nil
}

// UniqueValue is the claim value of a document's unique index values, or
// "" when one is null (a unique index allows any number of nulls).
func UniqueValue(ix Index, fields map[string]any) string {
	vals := make([]any, len(ix.Attributes))
	for i, a := range ix.Attributes {
		v := fields[a]
		if v == nil {
			return ""
		}
		if f, ok := v.(float64); ok && f == 0 {
			v = 0.0 // -0 and 0 are one value
		}
		vals[i] = ToJSON(v)
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return fmt.Sprint(vals)
	}
	return string(b)
}

// IndexClaimNamespace is the claim namespace of a unique index's values.
func IndexClaimNamespace(uid string) string { return "ix" + strings.ToLower(uid) }

// claims returns the claim events of a change from old to new data (nil
// for absent) on every unique index that did not fail.
func claims(c *eventsv1.Collection, s *Schema, id string, old, next map[string]any) []*eventsv1.Envelope {
	var out []*eventsv1.Envelope
	for _, ix := range s.Indexes {
		if ix.Type != IndexUnique || ix.Status == StatusFailed {
			continue
		}
		ns := IndexClaimNamespace(ix.UID)
		var was, is string
		if old != nil {
			was = UniqueValue(ix, withID(old, id))
		}
		if next != nil {
			is = UniqueValue(ix, withID(next, id))
		}
		if was == is {
			continue
		}
		if was != "" {
			out = append(out, &eventsv1.Envelope{Payload: &eventsv1.Envelope_ClaimReleased{ClaimReleased: &eventsv1.ClaimReleased{
				ProjectId: c.GetProjectId(), Namespace: ns, Value: was, Holder: id}}})
		}
		if is != "" {
			out = append(out, &eventsv1.Envelope{Payload: &eventsv1.Envelope_ClaimTaken{ClaimTaken: &eventsv1.ClaimTaken{
				ProjectId: c.GetProjectId(), Namespace: ns, Value: is, Holder: id}}})
		}
	}
	return out
}

// withID adds $id so unique indexes over it (with other attributes) see it.
func withID(data map[string]any, id string) map[string]any {
	out := make(map[string]any, len(data)+1)
	for k, v := range data {
		out[k] = v
	}
	out[AttrID] = id
	return out
}
