package database

import (
	"slices"
	"testing"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var liveDB = &eventsv1.Database{Id: "db1", ProjectId: "p1", Name: "Main", Enabled: true, Uid: "DBU1"}

func createColl() CreateCollection {
	return CreateCollection{Database: liveDB, ID: "c1", Name: "Posts", Permissions: []string{`read("any")`, `create("users")`},
		DocumentSecurity: true, Enabled: true, UID: "CU1", Now: t0}
}

func collectionOf(e *eventsv1.Envelope) *eventsv1.Collection {
	switch p := e.GetPayload().(type) {
	case *eventsv1.Envelope_CollectionCreated:
		return p.CollectionCreated.Collection
	case *eventsv1.Envelope_CollectionUpdated:
		return p.CollectionUpdated.Collection
	case *eventsv1.Envelope_CollectionDeleted:
		return p.CollectionDeleted.Collection
	case *eventsv1.Envelope_AttributeCreated:
		return p.AttributeCreated.Collection
	case *eventsv1.Envelope_AttributeDeleted:
		return p.AttributeDeleted.Collection
	case *eventsv1.Envelope_IndexCreated:
		return p.IndexCreated.Collection
	case *eventsv1.Envelope_IndexDeleted:
		return p.IndexDeleted.Collection
	}
	return nil
}

// apply decides each command in turn on state, failing the test on error.
func apply(t *testing.T, state CollectionState, cmds ...CollectionCommand) CollectionState {
	t.Helper()
	for _, c := range cmds {
		evs, err := DecideCollection(state, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range evs {
			state = EvolveCollection(state, e)
		}
	}
	return state
}

func attrKeys(c *eventsv1.Collection) []string {
	var out []string
	for _, a := range c.GetAttributes() {
		out = append(out, a.GetKey())
	}
	return out
}

func indexKeys(c *eventsv1.Collection) []string {
	var out []string
	for _, ix := range c.GetIndexes() {
		out = append(out, ix.GetKey())
	}
	return out
}

func TestDecideCollection(t *testing.T) {
	base := apply(t, nil, createColl(),
		CreateAttribute{Attribute: Attribute{Key: "title", Type: TypeString, Size: 100}, Now: t1},
		CreateAttribute{Attribute: Attribute{Key: "n", Type: TypeInteger}, Now: t1},
		CreateAttribute{Attribute: Attribute{Key: "tags", Type: TypeString, Size: 10, Array: true}, Now: t1},
		CreateIndex{Index: Index{Key: "by_title", Type: IndexKey, Attributes: []string{"title"}, UID: "IX1"}, Now: t1},
		CreateIndex{Index: Index{Key: "by_title_n", Type: IndexUnique, Attributes: []string{"title", "n"}, Desc: []bool{false, true}, UID: "IX2"}, Now: t1},
		CreateIndex{Index: Index{Key: "by_n", Type: IndexKey, Attributes: []string{"n"}, UID: "IX3"}, Now: t1},
	)
	if base.Version != 7 {
		t.Fatalf("version after 7 events: %d", base.Version)
	}
	cases := []struct {
		name      string
		state     CollectionState
		when      CollectionCommand
		wantErr   domain.Kind
		wantField string
		wantN     int
		check     func(t *testing.T, e *eventsv1.Envelope)
	}{
		{name: "create", when: createColl(), wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			c := collectionOf(e)
			if c.Id != "c1" || c.ProjectId != "p1" || c.DatabaseId != "db1" || c.DatabaseUid != "DBU1" || c.Uid != "CU1" ||
				c.Name != "Posts" || !c.DocumentSecurity || !c.Enabled || c.Version != 1 || !c.CreatedAt.AsTime().Equal(t0) ||
				!slices.Equal(c.Permissions, []string{`read("any")`, `create("users")`}) {
				t.Fatalf("bad collection %v", c)
			}
		}},
		{name: "create canonical permissions", when: func() CollectionCommand {
			c := createColl()
			c.Permissions = []string{`read("user:abc")`}
			return c
		}(), wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			if p := collectionOf(e).Permissions; len(p) != 1 || p[0] != `read("user:abc")` {
				t.Fatalf("permissions %v", p)
			}
		}},
		{name: "create without database", when: CreateCollection{ID: "c1", Name: "n", UID: "U"}, wantErr: domain.KindNotFound},
		{name: "create existing", state: base, when: createColl(), wantErr: domain.KindAlreadyExists},
		{name: "create bad id", when: func() CollectionCommand { c := createColl(); c.ID = "-x"; return c }(), wantErr: domain.KindInvalid, wantField: "collection_id"},
		{name: "create empty name", when: func() CollectionCommand { c := createColl(); c.Name = ""; return c }(), wantErr: domain.KindInvalid, wantField: "name"},
		{name: "create bad permission", when: func() CollectionCommand { c := createColl(); c.Permissions = []string{`fly("any")`}; return c }(), wantErr: domain.KindInvalid, wantField: "permissions"},
		{name: "create duplicate permission", when: func() CollectionCommand {
			c := createColl()
			c.Permissions = []string{`read("any")`, `read("any")`}
			return c
		}(), wantErr: domain.KindInvalid, wantField: "permissions"},

		{name: "update name", state: base, when: UpdateCollection{Name: ptr("Other"), Now: t1}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			c := collectionOf(e)
			if e.GetCollectionUpdated() == nil || c.Name != "Other" || c.Version != 8 || len(c.Attributes) != 3 || len(c.Indexes) != 3 {
				t.Fatalf("bad collection %v", c)
			}
		}},
		{name: "update permissions to none", state: base, when: UpdateCollection{Permissions: &[]string{}, Now: t1}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			if c := collectionOf(e); len(c.Permissions) != 0 {
				t.Fatalf("permissions %v", c.Permissions)
			}
		}},
		{name: "update flags", state: base, when: UpdateCollection{DocumentSecurity: ptr(false), Enabled: ptr(false), Now: t1}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			if c := collectionOf(e); c.DocumentSecurity || c.Enabled {
				t.Fatalf("bad collection %v", c)
			}
		}},
		{name: "update no-op", state: base, when: UpdateCollection{Name: ptr("Posts"), Permissions: &[]string{`read("any")`, `create("users")`}, DocumentSecurity: ptr(true), Enabled: ptr(true), Now: t1}},
		{name: "update bad permission", state: base, when: UpdateCollection{Permissions: &[]string{"nope"}}, wantErr: domain.KindInvalid, wantField: "permissions"},
		{name: "update bad name", state: base, when: UpdateCollection{Name: ptr("")}, wantErr: domain.KindInvalid, wantField: "name"},
		{name: "update missing", when: UpdateCollection{Name: ptr("x")}, wantErr: domain.KindNotFound},

		{name: "delete", state: base, when: DeleteCollection{Now: t1}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			if c := collectionOf(e); e.GetCollectionDeleted() == nil || c.Version != 8 || c.Id != "c1" {
				t.Fatalf("bad delete %v", e)
			}
		}},
		{name: "delete missing", when: DeleteCollection{}, wantErr: domain.KindNotFound},

		{name: "create attribute", state: base, when: CreateAttribute{Attribute: Attribute{Key: "score", Type: TypeFloat, FloatMin: 0, FloatMax: 10, Default: 2.5, Status: StatusFailed}, Now: t1},
			wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
				p := e.GetAttributeCreated()
				c := p.GetCollection()
				a := c.Attributes[len(c.Attributes)-1]
				if p.Key != "score" || c.Version != 8 || a.Key != "score" || a.Status != string(StatusAvailable) || a.CreatedVersion != 8 ||
					a.DefaultJson != "2.5" || a.FloatMax != 10 || !c.UpdatedAt.AsTime().Equal(t1) {
					t.Fatalf("bad attribute event %v", p)
				}
			}},
		{name: "create attribute defaults bounds", state: base, when: CreateAttribute{Attribute: Attribute{Key: "m", Type: TypeInteger}}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			c := collectionOf(e)
			if a := c.Attributes[len(c.Attributes)-1]; a.IntMin != MinSafeInteger || a.IntMax != MaxSafeInteger {
				t.Fatalf("bounds %v", a)
			}
		}},
		{name: "create attribute duplicate", state: base, when: CreateAttribute{Attribute: Attribute{Key: "title", Type: TypeString, Size: 5}}, wantErr: domain.KindAlreadyExists, wantField: "key"},
		{name: "create attribute size 0", state: base, when: CreateAttribute{Attribute: Attribute{Key: "s", Type: TypeString}}, wantErr: domain.KindInvalid, wantField: "size"},
		{name: "create attribute min>max", state: base, when: CreateAttribute{Attribute: Attribute{Key: "s", Type: TypeInteger, IntMin: 5, IntMax: 1}}, wantErr: domain.KindInvalid, wantField: "min"},
		{name: "create attribute default on required", state: base, when: CreateAttribute{Attribute: Attribute{Key: "s", Type: TypeBoolean, Required: true, Default: true}}, wantErr: domain.KindInvalid, wantField: "default"},
		{name: "create attribute bad enum default", state: base, when: CreateAttribute{Attribute: Attribute{Key: "s", Type: TypeEnum, Elements: []string{"a", "b"}, Default: "c"}}, wantErr: domain.KindInvalid, wantField: "default"},
		{name: "create attribute missing collection", when: CreateAttribute{Attribute: Attribute{Key: "s", Type: TypeBoolean}}, wantErr: domain.KindNotFound},

		{name: "delete attribute cascades to its indexes", state: base, when: DeleteAttribute{Key: "title", Now: t1}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			p := e.GetAttributeDeleted()
			c := p.GetCollection()
			if p.Key != "title" || p.Attribute.GetKey() != "title" || p.Attribute.GetSize() != 100 || c.Version != 8 ||
				!slices.Equal(attrKeys(c), []string{"n", "tags"}) || !slices.Equal(indexKeys(c), []string{"by_n"}) {
				t.Fatalf("bad attribute deletion %v", p)
			}
		}},
		{name: "delete attribute without indexes", state: base, when: DeleteAttribute{Key: "tags"}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			c := collectionOf(e)
			if !slices.Equal(attrKeys(c), []string{"title", "n"}) || len(c.Indexes) != 3 {
				t.Fatalf("bad collection %v", c)
			}
		}},
		{name: "delete attribute missing", state: base, when: DeleteAttribute{Key: "nope"}, wantErr: domain.KindNotFound},

		{name: "create index", state: base, when: CreateIndex{Index: Index{Key: "by_created", Type: IndexKey, Attributes: []string{"$createdAt", "n"}, UID: "IX4", Status: StatusAvailable}, Now: t1},
			wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
				p := e.GetIndexCreated()
				c := p.GetCollection()
				ix := c.Indexes[len(c.Indexes)-1]
				if p.Key != "by_created" || ix.Status != string(StatusProcessing) || ix.Uid != "IX4" || ix.CreatedVersion != 8 ||
					!slices.Equal(ix.Desc, []bool{false, false}) || c.Version != 8 {
					t.Fatalf("bad index event %v", p)
				}
			}},
		{name: "create index on missing attribute", state: base, when: CreateIndex{Index: Index{Key: "x", Type: IndexKey, Attributes: []string{"nope"}, UID: "I"}}, wantErr: domain.KindInvalid, wantField: "attributes"},
		{name: "create index on array", state: base, when: CreateIndex{Index: Index{Key: "x", Type: IndexKey, Attributes: []string{"tags"}, UID: "I"}}, wantErr: domain.KindInvalid, wantField: "attributes"},
		{name: "create index duplicate", state: base, when: CreateIndex{Index: Index{Key: "by_n", Type: IndexKey, Attributes: []string{"n"}, UID: "I"}}, wantErr: domain.KindAlreadyExists},
		{name: "create index bad type", state: base, when: CreateIndex{Index: Index{Key: "x", Type: "spatial", Attributes: []string{"n"}, UID: "I"}}, wantErr: domain.KindInvalid, wantField: "type"},
		{name: "create index missing collection", when: CreateIndex{Index: Index{Key: "x", Type: IndexKey, Attributes: []string{"$id"}, UID: "I"}}, wantErr: domain.KindNotFound},

		{name: "delete index", state: base, when: DeleteIndex{Key: "by_title_n", Now: t1}, wantN: 1, check: func(t *testing.T, e *eventsv1.Envelope) {
			p := e.GetIndexDeleted()
			if p.Key != "by_title_n" || p.Index.GetUid() != "IX2" || !slices.Equal(indexKeys(p.Collection), []string{"by_title", "by_n"}) || p.Collection.Version != 8 {
				t.Fatalf("bad index deletion %v", p)
			}
		}},
		{name: "delete index missing", state: base, when: DeleteIndex{Key: "nope"}, wantErr: domain.KindNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecideCollection(tc.state, tc.when)
			if tc.wantErr != domain.KindInternal || err != nil {
				if domain.KindOf(err) != tc.wantErr {
					t.Fatalf("err %v (kind %v), want kind %v", err, domain.KindOf(err), tc.wantErr)
				}
				if e, _ := err.(*domain.Error); tc.wantField != "" && (e == nil || e.Field != tc.wantField) {
					t.Fatalf("err %v, want field %q", err, tc.wantField)
				}
				return
			}
			if len(evs) != tc.wantN {
				t.Fatalf("%d events, want %d", len(evs), tc.wantN)
			}
			if tc.check != nil {
				tc.check(t, evs[0])
			}
		})
	}
	// No decision changed the state it was given.
	if base.Version != 7 || len(base.Attributes) != 3 || len(base.Indexes) != 3 || base.Name != "Posts" {
		t.Fatalf("state mutated: %v", base)
	}
}

func TestEvolveCollection(t *testing.T) {
	s := apply(t, nil, createColl(),
		CreateAttribute{Attribute: Attribute{Key: "a", Type: TypeBoolean}},
		CreateIndex{Index: Index{Key: "ix", Type: IndexKey, Attributes: []string{"a"}, UID: "I"}},
		DeleteIndex{Key: "ix"},
		DeleteAttribute{Key: "a"},
	)
	if s.Version != 5 || len(s.Attributes) != 0 || len(s.Indexes) != 0 {
		t.Fatalf("state %v", s)
	}
	// An attribute created again gets the new version: documents stored
	// against the old one read it as its default.
	s = apply(t, s, CreateAttribute{Attribute: Attribute{Key: "a", Type: TypeBoolean}})
	if s.Attributes[0].CreatedVersion != 6 {
		t.Fatalf("re-created attribute version %d", s.Attributes[0].CreatedVersion)
	}
	evs, _ := DecideCollection(s, DeleteCollection{})
	if EvolveCollection(s, evs[0]) != nil {
		t.Fatal("deleted collection has state")
	}
	if EvolveCollection(s, &eventsv1.Envelope{}) != s {
		t.Fatal("foreign event changed state")
	}
}

func TestLiveCollection(t *testing.T) {
	c := apply(t, nil, createColl())
	if !LiveCollection(liveDB, c) {
		t.Fatal("collection of the live database is not live")
	}
	recreated := &eventsv1.Database{Id: "db1", ProjectId: "p1", Uid: "DBU2"}
	if LiveCollection(recreated, c) {
		t.Fatal("collection of a deleted database is live in its successor")
	}
	if LiveCollection(nil, c) || LiveCollection(liveDB, nil) {
		t.Fatal("nil is live")
	}
	// Absent, it may be created again in the new database.
	cmd := createColl()
	cmd.Database, cmd.UID = recreated, "CU2"
	if _, err := DecideCollection(nil, cmd); err != nil {
		t.Fatal(err)
	}
}
