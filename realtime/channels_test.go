package realtime

import (
	"slices"
	"testing"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

func TestValidChannel(t *testing.T) {
	for _, c := range []string{
		"account", "documents", "files", "teams", "memberships", "executions",
		"teams.t1", "memberships.m1", "functions.fn",
		"databases.db.collections.c.documents", "databases.db.collections.c.documents.d",
		"buckets.b.files", "buckets.b.files.f",
	} {
		if err := ValidChannel(c); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
	for _, c := range []string{
		"", "accounts", "users", "account.u1", "documents.d", "files.f", "executions.e", "functions",
		"teams.t1.x", "memberships.", ".teams", "teams..x",
		"databases.db.collections.c", "databases.db.collections.c.documents.d.x", "databases.db.tables.c.documents",
		"databases.*.collections.c.documents", "databases.>", "databases.db.collections.c.documents.d d",
		"buckets.b", "buckets.b.files.f.x", "buckets.b.blobs", "buckets.*.files", "teams.\tt",
	} {
		if err := ValidChannel(c); err == nil {
			t.Errorf("%q: accepted", c)
		}
	}
}

// TestRouteOf maps every resource kind's stored event (under the subject
// the event log gives it) to its channels, Appwrite names and kind.
func TestRouteOf(t *testing.T) {
	doc := &eventsv1.Document{ProjectId: "p", DatabaseId: "db", CollectionId: "c", Id: "d"}
	file := &eventsv1.File{ProjectId: "p", BucketId: "b", Id: "f"}
	team := &eventsv1.Team{ProjectId: "p", Id: "t"}
	mem := &eventsv1.Membership{ProjectId: "p", TeamId: "t", Id: "m", UserId: "u"}
	user := &eventsv1.User{ProjectId: "p", Id: "u"}
	const coll = "databases.db.collections.c.documents"
	docChannels := []string{"documents", coll, coll + ".d"}
	fileChannels := []string{"files", "buckets.b.files", "buckets.b.files.f"}
	memChannels := []string{"memberships", "memberships.m", "teams", "teams.t"}
	for _, tc := range []struct {
		name     string
		env      *eventsv1.Envelope
		channels []string
		names    []string
		kind     Kind
		account  string
		access   bool
	}{
		{"document create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: doc}}},
			docChannels, []string{coll + ".d.create", "databases.*.collections.*.documents.*.create", coll + ".d"}, KindCreate, "", false},
		{"document update", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: doc}}},
			docChannels, []string{coll + ".d.update", "databases.*.collections.*.documents.*.update", coll + ".d"}, KindUpdate, "", false},
		{"document delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: &eventsv1.DocumentDeleted{Document: doc}}},
			docChannels, []string{coll + ".d.delete", "databases.*.collections.*.documents.*.delete", coll + ".d"}, KindDelete, "", false},
		{"file create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_FileCreated{FileCreated: &eventsv1.FileCreated{File: file}}},
			fileChannels, []string{"buckets.b.files.f.create", "buckets.*.files.*.create", "buckets.b.files.f"}, KindCreate, "", false},
		{"file update", &eventsv1.Envelope{Payload: &eventsv1.Envelope_FileUpdated{FileUpdated: &eventsv1.FileUpdated{File: file}}},
			fileChannels, []string{"buckets.b.files.f.update", "buckets.*.files.*.update", "buckets.b.files.f"}, KindUpdate, "", false},
		{"file delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_FileDeleted{FileDeleted: &eventsv1.FileDeleted{File: file}}},
			fileChannels, []string{"buckets.b.files.f.delete", "buckets.*.files.*.delete", "buckets.b.files.f"}, KindDelete, "", false},
		{"team create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamCreated{TeamCreated: &eventsv1.TeamCreated{Team: team}}},
			[]string{"teams", "teams.t"}, []string{"teams.t.create", "teams.*.create", "teams.t"}, KindCreate, "", true},
		{"team update", &eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamUpdated{TeamUpdated: &eventsv1.TeamUpdated{Team: team}}},
			[]string{"teams", "teams.t"}, []string{"teams.t.update", "teams.*.update", "teams.t"}, KindUpdate, "", true},
		{"team delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamDeleted{TeamDeleted: &eventsv1.TeamDeleted{Team: team}}},
			[]string{"teams", "teams.t"}, []string{"teams.t.delete", "teams.*.delete", "teams.t"}, KindDelete, "", true},
		{"membership create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipCreated{MembershipCreated: &eventsv1.MembershipCreated{Membership: mem}}},
			memChannels, []string{"teams.t.memberships.m.create", "teams.*.memberships.*.create", "teams.t.memberships.m"}, KindCreate, "", true},
		{"membership update", &eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipUpdated{MembershipUpdated: &eventsv1.MembershipUpdated{Membership: mem}}},
			memChannels, []string{"teams.t.memberships.m.update", "teams.*.memberships.*.update", "teams.t.memberships.m"}, KindUpdate, "", true},
		{"membership delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipDeleted{MembershipDeleted: &eventsv1.MembershipDeleted{Membership: mem}}},
			memChannels, []string{"teams.t.memberships.m.delete", "teams.*.memberships.*.delete", "teams.t.memberships.m"}, KindDelete, "", true},
		{"user create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserCreated{UserCreated: &eventsv1.UserCreated{User: user}}},
			[]string{"account"}, []string{"users.u.create", "users.*.create", "users.u"}, KindCreate, "u", true},
		{"user update name", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: user, Change: "name"}}},
			[]string{"account"}, []string{"users.u.update.name", "users.*.update.name", "users.u.update"}, KindUpdate, "u", true},
		{"user update prefs", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserUpdated{UserUpdated: &eventsv1.UserUpdated{User: user, Change: "prefs"}}},
			[]string{"account"}, []string{"users.u.update.prefs", "users.*.update.prefs", "users.u.update"}, KindUpdate, "u", true},
		{"user delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_UserDeleted{UserDeleted: &eventsv1.UserDeleted{User: user}}},
			[]string{"account"}, []string{"users.u.delete", "users.*.delete", "users.u"}, KindDelete, "u", true},
		{"session create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionCreated{SessionCreated: &eventsv1.SessionCreated{User: user, SessionId: "s"}}},
			[]string{"account"}, []string{"users.u.sessions.s.create", "users.*.sessions.*.create", "users.u.sessions.s"}, KindCreate, "u", true},
		{"session update", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionUpdated{SessionUpdated: &eventsv1.SessionUpdated{User: user, SessionId: "s"}}},
			[]string{"account"}, []string{"users.u.sessions.s.update", "users.*.sessions.*.update", "users.u.sessions.s"}, KindUpdate, "u", true},
		{"session delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionsDeleted{SessionsDeleted: &eventsv1.SessionsDeleted{User: user, SessionIds: []string{"s"}}}},
			[]string{"account"}, []string{"users.u.sessions.s.delete", "users.*.sessions.*.delete", "users.u.sessions.s"}, KindDelete, "u", true},
		{"sessions delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_SessionsDeleted{SessionsDeleted: &eventsv1.SessionsDeleted{User: user, SessionIds: []string{"s1", "s2"}}}},
			[]string{"account"}, []string{"users.u.sessions.delete", "users.*.sessions.delete", "users.u.sessions"}, KindDelete, "u", true},
		{"passkey create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_PasskeyRegistered{PasskeyRegistered: &eventsv1.PasskeyRegistered{User: user, PasskeyId: "k"}}},
			[]string{"account"}, []string{"users.u.passkeys.k.create", "users.*.passkeys.*.create", "users.u.passkeys.k"}, KindCreate, "u", false},
		{"passkey use", &eventsv1.Envelope{Payload: &eventsv1.Envelope_PasskeyUsed{PasskeyUsed: &eventsv1.PasskeyUsed{User: user, PasskeyId: "k"}}},
			[]string{"account"}, []string{"users.u.passkeys.k.update", "users.*.passkeys.*.update", "users.u.passkeys.k"}, KindUpdate, "u", false},
		{"passkey delete", &eventsv1.Envelope{Payload: &eventsv1.Envelope_PasskeyRemoved{PasskeyRemoved: &eventsv1.PasskeyRemoved{User: user, Passkey: &eventsv1.Passkey{Id: "k"}}}},
			[]string{"account"}, []string{"users.u.passkeys.k.delete", "users.*.passkeys.*.delete", "users.u.passkeys.k"}, KindDelete, "u", false},
		// Resources without a channel: no route at all.
		{"token", &eventsv1.Envelope{Payload: &eventsv1.Envelope_TokenCreated{TokenCreated: &eventsv1.TokenCreated{User: user, TokenId: "tk"}}},
			nil, nil, KindCreate, "", false},
		{"key", &eventsv1.Envelope{Payload: &eventsv1.Envelope_KeyCreated{KeyCreated: &eventsv1.KeyCreated{Key: &eventsv1.Key{ProjectId: "p", Id: "k"}}}},
			nil, nil, KindCreate, "", false},
		{"bucket", &eventsv1.Envelope{Payload: &eventsv1.Envelope_BucketCreated{BucketCreated: &eventsv1.BucketCreated{Bucket: &eventsv1.Bucket{ProjectId: "p", Id: "b"}}}},
			nil, nil, KindCreate, "", false},
		{"collection", &eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionCreated{CollectionCreated: &eventsv1.CollectionCreated{
			Collection: &eventsv1.Collection{ProjectId: "p", DatabaseId: "db", Id: "c"}}}},
			nil, nil, KindCreate, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subject, err := eventlog.Subject(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			r := RouteOf(subject, tc.env)
			if !slices.Equal(r.Channels, tc.channels) {
				t.Errorf("%s: channels %q, want %q", subject, r.Channels, tc.channels)
			}
			if !slices.Equal(r.Names, tc.names) {
				t.Errorf("%s: names %q, want %q", subject, r.Names, tc.names)
			}
			if tc.channels != nil && r.Kind != tc.kind {
				t.Errorf("%s: kind %v, want %v", subject, r.Kind, tc.kind)
			}
			if r.AccountOf != tc.account || r.AccessChange != tc.access {
				t.Errorf("%s: account of %q, access change %v; want %q, %v", subject, r.AccountOf, r.AccessChange, tc.account, tc.access)
			}
			for _, c := range r.Channels {
				if err := ValidChannel(c); err != nil {
					t.Errorf("route channel: %v", err)
				}
			}
		})
	}
	// A subject too short for its payload routes nowhere.
	if r := RouteOf("cairn.p.documents.create", &eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: doc}}}); r.Channels != nil || r.Names != nil {
		t.Errorf("short subject routed: %+v", r)
	}
	if r := RouteOf("cairn.p", &eventsv1.Envelope{}); r.Channels != nil {
		t.Errorf("two-token subject routed: %+v", r)
	}
}
