package database

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairn-dev/cairn/domain"
)

func relColl(id, uid string) CollectionState {
	c := createColl()
	c.ID, c.UID = id, uid
	evs, err := DecideCollection(nil, c)
	if err != nil {
		panic(err)
	}
	return collectionOf(evs[0])
}

func relAttr(typ RelationType, twoWay bool, onDelete OnDelete) Attribute {
	a := Attribute{Key: "rel", Type: TypeRelationship, Relation: Relation{Collection: "b", Type: typ, TwoWay: twoWay, OnDelete: onDelete}}
	if twoWay {
		a.Relation.TwoWayKey = "back"
	}
	return a
}

// relPair creates relationship a from collection "a" to "b" and returns
// both schemas after it.
func relPair(t *testing.T, a Attribute) (*Schema, *Schema) {
	t.Helper()
	ca, cb := relColl("a", "UA"), relColl("b", "UB")
	own, partner, err := DecideRelationship(ca, cb, CreateAttribute{Attribute: a, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if a.Relation.TwoWay != (len(partner) == 1) || len(own) != 1 {
		t.Fatalf("two-way %v: %d own, %d partner events", a.Relation.TwoWay, len(own), len(partner))
	}
	sa, err := SchemaOf(collectionOf(own[0]))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := SchemaOf(cb)
	if len(partner) == 1 {
		sb, err = SchemaOf(collectionOf(partner[0]))
	}
	if err != nil {
		t.Fatal(err)
	}
	return sa, sb
}

// TestRelationshipMatrix: every type × one/two-way × onDelete decides the
// schema (array sides, mirrored partner), links (cardinality on the
// single side) and deletes (restrict, cascade, setNull) as documented.
func TestRelationshipMatrix(t *testing.T) {
	for _, typ := range []RelationType{OneToOne, OneToMany, ManyToOne, ManyToMany} {
		for _, twoWay := range []bool{false, true} {
			for _, od := range []OnDelete{OnDeleteRestrict, OnDeleteCascade, OnDeleteSetNull} {
				t.Run(fmt.Sprintf("%s/twoWay=%v/%s", typ, twoWay, od), func(t *testing.T) {
					sa, sb := relPair(t, relAttr(typ, twoWay, od))
					a, _ := sa.Attribute("rel")
					if a.Array != typ.Many() || a.Relation.Side != SideParent || a.Relation.OnDelete != od {
						t.Fatalf("parent %+v", a)
					}
					var val any = "b1"
					if a.Array {
						val = []any{"b1"}
					}
					after, err := sa.Normalize(map[string]any{"rel": val}, nil)
					if err != nil {
						t.Fatal(err)
					}
					links := Links(sa, "a1", nil, after)
					if targets := Targets(sa, nil, after); targets[DocRef{"b", "b1"}] != "rel" {
						t.Fatalf("targets %v", targets)
					}
					if !twoWay {
						if len(links) != 0 {
							t.Fatalf("one-way links %v", links)
						}
					} else {
						b, ok := sb.Attribute("back")
						if !ok || b.Relation.Type != typ.Mirror() || b.Array != typ.Mirror().Many() || b.Relation.Side != SideChild || b.Relation.TwoWayKey != "rel" {
							t.Fatalf("partner %+v", b)
						}
						if len(links) != 1 || links[0].Target != (DocRef{"b", "b1"}) || links[0].Key != "back" || links[0].Unlink {
							t.Fatalf("links %v", links)
						}
						upd, err := ApplyLinks(sb, map[string]any{"back": nil}, links)
						if err != nil || !slices.Equal(Related(upd["back"]), []string{"a1"}) {
							t.Fatalf("apply %v %v", upd, err)
						}
						// A second parent a2 linking b1: refused when b1's side is single.
						held := map[string]any{"back": upd["back"]}
						_, err = ApplyLinks(sb, held, []Link{{Target: DocRef{"b", "b1"}, Key: "back", ID: "a2", Via: "rel"}})
						if b.Array != (err == nil) {
							t.Fatalf("second link on array=%v: %v", b.Array, err)
						}
						if err != nil && fieldOf(err) != "data.rel" {
							t.Fatalf("second link names %q", fieldOf(err))
						}
						// Unlinking empties it again.
						un, err := ApplyLinks(sb, held, Links(sa, "a1", after, map[string]any{"rel": nil}))
						if err != nil || len(Related(un["back"])) != 0 {
							t.Fatalf("unlink %v %v", un, err)
						}
					}
					plan, err := PlanDelete(sa, "a1", after)
					switch {
					case od == OnDeleteRestrict:
						if fieldOf(err) != "" || kindOf(err) != domain.KindFailedPrecondition {
							t.Fatalf("restrict: %v", err)
						}
					case od == OnDeleteCascade:
						if err != nil || !slices.Equal(plan.Cascade, []DocRef{{"b", "b1"}}) || len(plan.Links) != 0 {
							t.Fatalf("cascade: %+v %v", plan, err)
						}
					case twoWay:
						if err != nil || len(plan.Cascade) != 0 || len(plan.Links) != 1 || !plan.Links[0].Unlink {
							t.Fatalf("setNull: %+v %v", plan, err)
						}
					default:
						if err != nil || len(plan.Cascade)+len(plan.Links) != 0 {
							t.Fatalf("one-way setNull: %+v %v", plan, err)
						}
					}
					if twoWay && od != OnDeleteRestrict {
						// The child side never cascades upwards: it unlinks.
						plan, err := PlanDelete(sb, "b1", map[string]any{"back": map[bool]any{true: []any{"a1"}, false: "a1"}[typ.Mirror().Many()]})
						if err != nil || len(plan.Cascade) != 0 || len(plan.Links) != 1 || plan.Links[0].Target != (DocRef{"a", "a1"}) {
							t.Fatalf("child delete: %+v %v", plan, err)
						}
					}
				})
			}
		}
	}
}

func fieldOf(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Field
	}
	return ""
}

func kindOf(err error) domain.Kind {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return domain.KindInternal
}

// TestRelationshipBadInput: every refused schema names its field.
func TestRelationshipBadInput(t *testing.T) {
	ca, cb := relColl("a", "UA"), relColl("b", "UB")
	cb = apply(t, cb, CreateAttribute{Attribute: Attribute{Key: "title", Type: TypeString, Size: 10}, Now: t0})
	other := relColl("b", "UB2")
	other.DatabaseUid = "elsewhere"
	for _, c := range []struct {
		name    string
		a       Attribute
		related CollectionState
		field   string
	}{
		{"no related collection", Attribute{Key: "r", Type: TypeRelationship, Relation: Relation{Type: OneToOne}}, cb, "related_collection"},
		{"missing related collection", relAttr(OneToOne, false, ""), nil, "related_collection"},
		{"other database", relAttr(OneToOne, false, ""), other, "related_collection"},
		{"bad type", relAttr("oneToFew", false, ""), cb, "relation_type"},
		{"bad onDelete", relAttr(OneToOne, false, "explode"), cb, "on_delete"},
		{"required", func() Attribute { a := relAttr(OneToOne, false, ""); a.Required = true; return a }(), cb, "required"},
		{"two-way without key", func() Attribute { a := relAttr(OneToOne, true, ""); a.Relation.TwoWayKey = ""; return a }(), cb, "two_way_key"},
		{"two-way key clash", func() Attribute { a := relAttr(OneToOne, true, ""); a.Relation.TwoWayKey = "title"; return a }(), cb, "two_way_key"},
		{"bad two-way key", func() Attribute { a := relAttr(OneToOne, true, ""); a.Relation.TwoWayKey = "$x"; return a }(), cb, "two_way_key"},
	} {
		_, _, err := DecideRelationship(ca, c.related, CreateAttribute{Attribute: c.a, Now: t0})
		if fieldOf(err) != c.field {
			t.Errorf("%s: want field %q, got %v", c.name, c.field, err)
		}
	}
	// A self-relationship must be one-way.
	self := relAttr(OneToOne, true, "")
	self.Relation.Collection = "a"
	if _, _, err := DecideRelationship(ca, ca, CreateAttribute{Attribute: self, Now: t0}); fieldOf(err) != "two_way" {
		t.Errorf("two-way self: %v", err)
	}
	self.Relation.TwoWay = false
	if own, partner, err := DecideRelationship(ca, ca, CreateAttribute{Attribute: self, Now: t0}); err != nil || len(own) != 1 || partner != nil {
		t.Errorf("one-way self: %v", err)
	}
	// Values: ids only, no duplicates, at most MaxRelated.
	sa, _ := relPair(t, relAttr(ManyToMany, false, ""))
	for _, v := range []any{"b1", []any{"b1", "b1"}, []any{"bad id!"}, []any{1.0}} {
		if _, err := sa.Normalize(map[string]any{"rel": v}, nil); fieldOf(err) != "data.rel" {
			t.Errorf("value %v: %v", v, err)
		}
	}
	if got, err := sa.Normalize(map[string]any{"rel": []any{map[string]any{"$id": "b1"}}}, nil); err != nil || !slices.Equal(Related(got["rel"]), []string{"b1"}) {
		t.Errorf("object with $id: %v %v", got, err)
	}
}

// TestDeleteRelationshipTakesPartner: deleting either side of a two-way
// relationship deletes both attributes.
func TestDeleteRelationshipTakesPartner(t *testing.T) {
	ca, cb := relColl("a", "UA"), relColl("b", "UB")
	own, partner, err := DecideRelationship(ca, cb, CreateAttribute{Attribute: relAttr(OneToMany, true, OnDeleteCascade), Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	ca, cb = collectionOf(own[0]), collectionOf(partner[0])
	o, p, err := DeleteRelationship(cb, ca, DeleteAttribute{Key: "back", Now: t0})
	if err != nil || len(o) != 1 || len(p) != 1 {
		t.Fatalf("%v %v %v", o, p, err)
	}
	if _, ok := RelationOf(collectionOf(p[0]), "rel"); ok {
		t.Fatal("partner kept")
	}
	if _, _, err := DeleteRelationship(ca, cb, DeleteAttribute{Key: "nope", Now: t0}); kindOf(err) != domain.KindNotFound {
		t.Fatal(err)
	}
}
