package database

import (
	"fmt"
	"slices"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Relationships between collections, as Appwrite has them. A relationship
// attribute (TypeRelationship) holds the ids of related documents of
// another collection of the same database: one id, or a list when its side
// relates to many. A two-way relationship has a partner attribute on the
// related collection (Relation.TwoWayKey) holding the ids back; the
// deciders here keep both sides equal, and every change to a related
// document is an ordinary document event in the same atomic batch.

// RelationType is a relationship's cardinality, seen from the side of
// the attribute that holds it (a oneToMany parent's partner is manyToOne).
type RelationType string

// Relation types (Appwrite's names). Stored in events: only ever add.
const (
	OneToOne   RelationType = "oneToOne"
	OneToMany  RelationType = "oneToMany"
	ManyToOne  RelationType = "manyToOne"
	ManyToMany RelationType = "manyToMany"
)

// OnDelete is what deleting a document on a relationship's parent side
// does to the documents it relates to.
type OnDelete string

// On-delete behaviours (Appwrite's names).
const (
	// OnDeleteRestrict refuses the delete while the document has related
	// documents.
	OnDeleteRestrict OnDelete = "restrict"
	// OnDeleteCascade deletes the related documents too.
	OnDeleteCascade OnDelete = "cascade"
	// OnDeleteSetNull removes the deleted document from the related
	// documents' partner attribute.
	OnDeleteSetNull OnDelete = "setNull"
)

// Side says which attribute of a two-way relationship this is.
type Side string

// Sides: the parent is the attribute created, the child its partner.
const (
	SideParent Side = "parent"
	SideChild  Side = "child"
)

// Relation describes a relationship attribute.
type Relation struct {
	// Collection is the related collection's id (same database).
	Collection string
	Type       RelationType
	TwoWay     bool
	// TwoWayKey is the partner attribute on Collection (two-way only).
	TwoWayKey string
	OnDelete  OnDelete
	Side      Side
}

// Limits of relationships.
const (
	// MaxRelated is the most ids one relationship attribute holds.
	MaxRelated = 100
	// MaxCascade is the most documents one delete removes by cascade: they
	// are deleted in the same atomic batch as the document itself.
	MaxCascade = 100
	// MaxSelectDepth is how deep a select loads related documents
	// (author.publisher.country.name is depth 3).
	MaxSelectDepth = 3
)

// Many reports whether this side holds a list of ids.
func (t RelationType) Many() bool { return t == OneToMany || t == ManyToMany }

// Mirror is the type as the partner side sees it.
func (t RelationType) Mirror() RelationType {
	switch t {
	case OneToMany:
		return ManyToOne
	case ManyToOne:
		return OneToMany
	}
	return t
}

// Exclusive reports whether a related document may be referenced by at
// most one document through this side (oneToOne, oneToMany).
func (t RelationType) Exclusive() bool { return t == OneToOne || t == OneToMany }

func validRelationType(t RelationType) bool {
	return t == OneToOne || t == OneToMany || t == ManyToOne || t == ManyToMany
}

// validateRelation checks a relationship attribute's own fields (the
// related collection is checked by DecideRelationship) and normalizes
// them: Array follows the type, OnDelete defaults to restrict, the side is
// the parent.
func validateRelation(a *Attribute) error {
	r := &a.Relation
	if r.Collection == "" {
		return domain.FieldError("related_collection", "a relationship attribute needs related_collection")
	}
	if !domain.ValidResourceID(r.Collection) {
		return domain.FieldError("related_collection", "malformed collection id %q", truncate(r.Collection))
	}
	if !validRelationType(r.Type) {
		return domain.FieldError("relation_type", "unknown relation type %q (want oneToOne, oneToMany, manyToOne or manyToMany)", truncate(string(r.Type)))
	}
	switch r.OnDelete {
	case "":
		r.OnDelete = OnDeleteRestrict
	case OnDeleteRestrict, OnDeleteCascade, OnDeleteSetNull:
	default:
		return domain.FieldError("on_delete", "unknown on-delete behaviour %q (want restrict, cascade or setNull)", truncate(string(r.OnDelete)))
	}
	if a.Required {
		return domain.FieldError("required", "a relationship attribute cannot be required")
	}
	if a.Default != nil {
		return domain.FieldError("default", "a relationship attribute has no default")
	}
	if r.TwoWay {
		if r.TwoWayKey == "" {
			return domain.FieldError("two_way_key", "a two-way relationship needs two_way_key, the partner attribute's key on %q", r.Collection)
		}
		if !keyPattern.MatchString(r.TwoWayKey) {
			return domain.FieldError("two_way_key", "attribute key %q %s", truncate(r.TwoWayKey), keyRule)
		}
	} else {
		r.TwoWayKey = ""
	}
	if r.Side != SideChild { // only DecideRelationship makes children
		r.Side = SideParent
	}
	a.Array = r.Type.Many()
	return nil
}

// DecideRelationship decides creating relationship attribute cmd on state
// related to the collection related (the live collection named by
// cmd.Attribute.Relation.Collection, nil when absent; state itself for a
// self-relationship). It returns the events of state and, for a two-way
// relationship, those of related creating the partner attribute: the
// caller appends both in one atomic batch.
func DecideRelationship(state, related CollectionState, cmd CreateAttribute) (own, partner []*eventsv1.Envelope, err error) {
	if state == nil {
		return nil, nil, ErrCollectionNotFound
	}
	a := cmd.Attribute
	if a.Type != TypeRelationship {
		return nil, nil, domain.FieldError("type", "not a relationship attribute")
	}
	s, err := SchemaOf(state)
	if err != nil {
		return nil, nil, err
	}
	if err := ValidateAttribute(s, &a); err != nil {
		return nil, nil, err
	}
	r := a.Relation
	if related == nil || related.GetDatabaseId() != state.GetDatabaseId() || related.GetDatabaseUid() != state.GetDatabaseUid() {
		return nil, nil, domain.FieldError("related_collection", "collection %q not found in database %q", r.Collection, state.GetDatabaseId())
	}
	self := related.GetUid() == state.GetUid()
	if self && r.TwoWay {
		return nil, nil, domain.FieldError("two_way", "a relationship of collection %q with itself must be one-way", state.GetId())
	}
	own, err = createAttribute(state, CreateAttribute{Attribute: a, Now: cmd.Now})
	if err != nil || !r.TwoWay {
		return own, nil, err
	}
	rs, err := SchemaOf(related)
	if err != nil {
		return nil, nil, err
	}
	back := Attribute{Key: r.TwoWayKey, Type: TypeRelationship, Relation: Relation{Collection: state.GetId(), Type: r.Type.Mirror(),
		TwoWay: true, TwoWayKey: a.Key, OnDelete: r.OnDelete}}
	if err := ValidateAttribute(rs, &back); err != nil {
		if de, ok := err.(*domain.Error); ok && de.Field == "key" {
			return nil, nil, &domain.Error{Kind: de.Kind, Field: "two_way_key", Message: fmt.Sprintf("collection %q: %s", related.GetId(), de.Message)}
		}
		return nil, nil, err
	}
	back.Relation.Side = SideChild
	partner, err = createAttribute(related, CreateAttribute{Attribute: back, Now: cmd.Now})
	return own, partner, err
}

// RelationOf returns the relationship attribute key of state, or false.
func RelationOf(state CollectionState, key string) (Attribute, bool) {
	for _, a := range state.GetAttributes() {
		if a.GetKey() == key && Type(a.GetType()) == TypeRelationship {
			attr, err := AttributeFromEvent(a)
			return attr, err == nil
		}
	}
	return Attribute{}, false
}

// Related returns the ids value v (a relationship attribute's typed
// value: nil, a string or a list of strings) holds.
func Related(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// coerceRelated accepts a document id, or an object with "$id" (a related
// document as reads return it).
func coerceRelated(v any) (any, error) {
	if m, ok := v.(map[string]any); ok {
		v = m[AttrID]
	}
	s, ok := v.(string)
	if !ok || !domain.ValidResourceID(s) {
		return nil, fmt.Errorf("must be a document id (or an object with $id); got %s", describe(v))
	}
	return s, nil
}

func uniqueIDs(ids []any) error {
	if len(ids) > MaxRelated {
		return fmt.Errorf("relates at most %d documents; got %d", MaxRelated, len(ids))
	}
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("document %v appears twice", id)
		}
	}
	return nil
}

// Relationships returns s's live relationship attributes.
func (s *Schema) Relationships() []Attribute {
	var out []Attribute
	for _, a := range s.Attributes {
		if a.Type == TypeRelationship && live(a.Status) {
			out = append(out, a)
		}
	}
	return out
}

// DocRef names a document of a collection of the same database.
type DocRef struct {
	Collection, ID string
}

// Link is a change the write of one document makes to a related document:
// id is added to (or, with Unlink, removed from) attribute Key of
// document Target. Via names the attribute of the written document, for
// errors.
type Link struct {
	Target DocRef
	Key    string
	ID     string
	Unlink bool
	Via    string
}

// Links returns what writing document id of a collection with schema s,
// from data before to data after (nil for absent), changes on the other
// side of its two-way relationships: ids added link back, ids removed
// unlink. One-way relationships change nothing on the other side.
func Links(s *Schema, id string, before, after map[string]any) []Link {
	var out []Link
	for _, a := range s.Relationships() {
		if !a.Relation.TwoWay {
			continue
		}
		was, is := Related(before[a.Key]), Related(after[a.Key])
		for _, r := range was {
			if !slices.Contains(is, r) {
				out = append(out, Link{Target: DocRef{a.Relation.Collection, r}, Key: a.Relation.TwoWayKey, ID: id, Unlink: true, Via: a.Key})
			}
		}
		for _, r := range is {
			if !slices.Contains(was, r) {
				out = append(out, Link{Target: DocRef{a.Relation.Collection, r}, Key: a.Relation.TwoWayKey, ID: id, Via: a.Key})
			}
		}
	}
	return out
}

// Targets returns the documents data refers to that before did not: each
// must exist (and be readable by the writer).
func Targets(s *Schema, before, after map[string]any) map[DocRef]string {
	out := map[DocRef]string{}
	for _, a := range s.Relationships() {
		was := Related(before[a.Key])
		for _, r := range Related(after[a.Key]) {
			if !slices.Contains(was, r) {
				out[DocRef{a.Relation.Collection, r}] = a.Key
			}
		}
	}
	return out
}

// ApplyLinks returns the update of related document data (its current
// data, schema s) that links make: the changed attributes only, nil when
// nothing changes. A single-valued side that already holds another id
// refuses the link (a oneToOne or the one side of oneToMany target is
// related once), naming the writer's attribute.
func ApplyLinks(s *Schema, data map[string]any, links []Link) (map[string]any, error) {
	out := map[string]any{}
	for _, l := range links {
		a, ok := s.schemaAttribute(l.Key)
		if !ok || a.Type != TypeRelationship || !live(a.Status) {
			return nil, domain.Errorf(domain.KindInternal, "relationship partner %q missing on collection %q", l.Key, l.Target.Collection)
		}
		cur, done := out[l.Key]
		if !done {
			cur = data[l.Key]
		}
		if !a.Array {
			switch {
			case l.Unlink && cur == l.ID:
				cur = nil
			case l.Unlink:
			case cur != nil && cur != l.ID:
				return nil, domain.FieldError(dataField(l.Via), "document %q is already related to %q through %q; a %s relationship relates it once",
					l.Target.ID, cur, l.Key, a.Relation.Type.Mirror())
			default:
				cur = l.ID
			}
			out[l.Key] = cur
			continue
		}
		ids := slices.Clone(Related(cur))
		if i := slices.Index(ids, l.ID); l.Unlink && i >= 0 {
			ids = slices.Delete(ids, i, i+1)
		} else if !l.Unlink && i < 0 {
			if len(ids) >= MaxRelated {
				return nil, domain.FieldError(dataField(l.Via), "document %q already relates %d documents through %q, the most", l.Target.ID, MaxRelated, l.Key)
			}
			ids = append(ids, l.ID)
		}
		list := make([]any, len(ids))
		for i, id := range ids {
			list[i] = id
		}
		out[l.Key] = list
	}
	for k, v := range out {
		if sameRelated(v, data[k]) {
			delete(out, k)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func sameRelated(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return slices.Equal(Related(a), Related(b))
}

// DeletePlan is what deleting a document does to related documents.
type DeletePlan struct {
	// Cascade are the related documents deleted with it.
	Cascade []DocRef
	// Links unlink it from the related documents that stay.
	Links []Link
}

// PlanDelete decides what deleting document id (data as read, schema s)
// does through its relationships. On the parent side the relationship's
// OnDelete applies: restrict refuses while the document has related
// documents (naming the attribute), cascade deletes them, setNull unlinks
// it from them. On the child side of a two-way relationship it is
// unlinked from its parents (never cascading upwards), unless the
// relationship restricts.
func PlanDelete(s *Schema, id string, data map[string]any) (DeletePlan, error) {
	var p DeletePlan
	for _, a := range s.Relationships() {
		ids := Related(data[a.Key])
		if len(ids) == 0 {
			continue
		}
		r := a.Relation
		if r.OnDelete == OnDeleteRestrict {
			return DeletePlan{}, domain.Errorf(domain.KindFailedPrecondition,
				"document %q is related to %d document(s) of %q through %q (onDelete restrict); remove them from %q first", id, len(ids), r.Collection, a.Key, a.Key)
		}
		for _, t := range ids {
			ref := DocRef{r.Collection, t}
			switch {
			case r.OnDelete == OnDeleteCascade && r.Side != SideChild:
				p.Cascade = append(p.Cascade, ref)
			case r.TwoWay:
				p.Links = append(p.Links, Link{Target: ref, Key: r.TwoWayKey, ID: id, Unlink: true, Via: a.Key})
			}
		}
	}
	return p, nil
}

// DeleteRelationship decides deleting relationship attribute key of
// state: with it goes the partner attribute of a two-way relationship on
// related (Appwrite's rule), in the same batch.
func DeleteRelationship(state, related CollectionState, cmd DeleteAttribute) (own, partner []*eventsv1.Envelope, err error) {
	if state == nil {
		return nil, nil, ErrCollectionNotFound
	}
	a, ok := RelationOf(state, cmd.Key)
	if !ok {
		return nil, nil, domain.Errorf(domain.KindNotFound, "relationship attribute %q not found in collection %q", truncate(cmd.Key), state.GetId())
	}
	own, err = deleteAttribute(state, cmd)
	if err != nil || !a.Relation.TwoWay || related == nil {
		return own, nil, err
	}
	if _, ok := RelationOf(related, a.Relation.TwoWayKey); !ok {
		return own, nil, nil
	}
	partner, err = deleteAttribute(related, DeleteAttribute{Key: a.Relation.TwoWayKey, Now: cmd.Now})
	return own, partner, err
}
