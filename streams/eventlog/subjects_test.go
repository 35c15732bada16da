package eventlog_test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// Team and membership events follow Appwrite's names, and each lands in
// exactly its own aggregate: a membership's events never move its team's
// expected sequence, nor another membership's.
func TestTeamSubjects(t *testing.T) {
	team := &eventsv1.Team{Id: "t1", ProjectId: "p1"}
	m := &eventsv1.Membership{Id: "m1", ProjectId: "p1", TeamId: "t1"}
	cases := []struct {
		env  *eventsv1.Envelope
		want string
		agg  eventlog.Aggregate
	}{
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamCreated{TeamCreated: &eventsv1.TeamCreated{Team: team}}}, "cairn.p1.teams.t1.create", eventlog.TeamAggregate("p1", "t1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamUpdated{TeamUpdated: &eventsv1.TeamUpdated{Team: team}}}, "cairn.p1.teams.t1.update", eventlog.TeamAggregate("p1", "t1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TeamDeleted{TeamDeleted: &eventsv1.TeamDeleted{Team: team}}}, "cairn.p1.teams.t1.delete", eventlog.TeamAggregate("p1", "t1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipCreated{MembershipCreated: &eventsv1.MembershipCreated{Membership: m}}}, "cairn.p1.teams.t1.memberships.m1.create", eventlog.MembershipAggregate("p1", "t1", "m1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipUpdated{MembershipUpdated: &eventsv1.MembershipUpdated{Membership: m}}}, "cairn.p1.teams.t1.memberships.m1.update", eventlog.MembershipAggregate("p1", "t1", "m1")},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_MembershipDeleted{MembershipDeleted: &eventsv1.MembershipDeleted{Membership: m}}}, "cairn.p1.teams.t1.memberships.m1.delete", eventlog.MembershipAggregate("p1", "t1", "m1")},
	}
	aggs := []eventlog.Aggregate{eventlog.TeamAggregate("p1", "t1"), eventlog.MembershipAggregate("p1", "t1", "m1"),
		eventlog.MembershipAggregate("p1", "t1", "m2"), eventlog.TeamAggregate("p1", "t2")}
	for _, c := range cases {
		got, err := eventlog.Subject(c.env)
		if err != nil || got != c.want {
			t.Errorf("%T: subject %q, %v; want %q", c.env.GetPayload(), got, err, c.want)
		}
		for _, a := range aggs {
			if in := server.SubjectMatchesFilter(got, a.Filter); in != (a == c.agg) {
				t.Errorf("%s in aggregate %s: %v", got, a.Filter, in)
			}
		}
		if c.agg.Stream != "PROJECT_p1" {
			t.Errorf("stream %q", c.agg.Stream)
		}
	}
}

// Database, collection (with its schema changes) and document events each
// land in exactly their own aggregate: a document's events never move its
// collection's expected sequence, nor the database's.
func TestDatabaseSubjects(t *testing.T) {
	db := &eventsv1.Database{Id: "db1", ProjectId: "p1"}
	c := &eventsv1.Collection{Id: "c1", ProjectId: "p1", DatabaseId: "db1"}
	d := &eventsv1.Document{Id: "d1", ProjectId: "p1", DatabaseId: "db1", CollectionId: "c1"}
	tx := &eventsv1.Transaction{Id: "t1", ProjectId: "p1"}
	dbAgg, cAgg, dAgg := eventlog.DatabaseAggregate("p1", "db1"), eventlog.CollectionAggregate("p1", "db1", "c1"), eventlog.DocumentAggregate("p1", "db1", "c1", "d1")
	txAgg := eventlog.TransactionAggregate("p1", "t1")
	cases := []struct {
		env  *eventsv1.Envelope
		want string
		agg  eventlog.Aggregate
	}{
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_DatabaseCreated{DatabaseCreated: &eventsv1.DatabaseCreated{Database: db}}}, "cairn.p1.databases.db1.create", dbAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_DatabaseUpdated{DatabaseUpdated: &eventsv1.DatabaseUpdated{Database: db}}}, "cairn.p1.databases.db1.update", dbAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_DatabaseDeleted{DatabaseDeleted: &eventsv1.DatabaseDeleted{Database: db}}}, "cairn.p1.databases.db1.delete", dbAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionCreated{CollectionCreated: &eventsv1.CollectionCreated{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.create", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionUpdated{CollectionUpdated: &eventsv1.CollectionUpdated{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.update", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_CollectionDeleted{CollectionDeleted: &eventsv1.CollectionDeleted{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.delete", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_AttributeCreated{AttributeCreated: &eventsv1.AttributeCreated{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.update", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_AttributeDeleted{AttributeDeleted: &eventsv1.AttributeDeleted{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.update", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_IndexCreated{IndexCreated: &eventsv1.IndexCreated{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.update", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_IndexUpdated{IndexUpdated: &eventsv1.IndexUpdated{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.update", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_IndexDeleted{IndexDeleted: &eventsv1.IndexDeleted{Collection: c}}}, "cairn.p1.databases.db1.collections.c1.update", cAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentCreated{DocumentCreated: &eventsv1.DocumentCreated{Document: d}}}, "cairn.p1.databases.db1.collections.c1.documents.d1.create", dAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentUpdated{DocumentUpdated: &eventsv1.DocumentUpdated{Document: d}}}, "cairn.p1.databases.db1.collections.c1.documents.d1.update", dAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_DocumentDeleted{DocumentDeleted: &eventsv1.DocumentDeleted{Document: d}}}, "cairn.p1.databases.db1.collections.c1.documents.d1.delete", dAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TransactionCreated{TransactionCreated: &eventsv1.TransactionCreated{Transaction: tx}}}, "cairn.p1.transactions.t1.create", txAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TransactionStaged{TransactionStaged: &eventsv1.TransactionStaged{Transaction: tx}}}, "cairn.p1.transactions.t1.stage", txAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TransactionCommitted{TransactionCommitted: &eventsv1.TransactionCommitted{Transaction: tx}}}, "cairn.p1.transactions.t1.commit", txAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_TransactionRolledBack{TransactionRolledBack: &eventsv1.TransactionRolledBack{Transaction: tx}}}, "cairn.p1.transactions.t1.rollback", txAgg},
	}
	aggs := []eventlog.Aggregate{dbAgg, cAgg, dAgg, txAgg, eventlog.DocumentAggregate("p1", "db1", "c1", "d2"),
		eventlog.CollectionAggregate("p1", "db1", "c2"), eventlog.DatabaseAggregate("p1", "db2")}
	for _, c := range cases {
		got, err := eventlog.Subject(c.env)
		if err != nil || got != c.want {
			t.Errorf("%T: subject %q, %v; want %q", c.env.GetPayload(), got, err, c.want)
		}
		for _, a := range aggs {
			if in := server.SubjectMatchesFilter(got, a.Filter); in != (a == c.agg) {
				t.Errorf("%s in aggregate %s: %v", got, a.Filter, in)
			}
		}
	}
}

// Storage aggregates nest (bucket ⊃ file ⊃ token) but their filters must
// not: a bucket's expectation never covers its files, a file's never its
// tokens.
func TestStorageSubjects(t *testing.T) {
	b := &eventsv1.Bucket{Id: "b1", ProjectId: "p1"}
	f := &eventsv1.File{Id: "f1", ProjectId: "p1", BucketId: "b1"}
	up := &eventsv1.Upload{File: f}
	tok := &eventsv1.FileToken{Id: "t1", ProjectId: "p1", BucketId: "b1", FileId: "f1"}
	bAgg, fAgg, tAgg := eventlog.BucketAggregate("p1", "b1"), eventlog.FileAggregate("p1", "b1", "f1"), eventlog.FileTokenAggregate("p1", "b1", "f1", "t1")
	cases := []struct {
		env  *eventsv1.Envelope
		want string
		agg  eventlog.Aggregate
	}{
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_BucketCreated{BucketCreated: &eventsv1.BucketCreated{Bucket: b}}}, "cairn.p1.buckets.b1.create", bAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_BucketUpdated{BucketUpdated: &eventsv1.BucketUpdated{Bucket: b}}}, "cairn.p1.buckets.b1.update", bAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_BucketDeleted{BucketDeleted: &eventsv1.BucketDeleted{Bucket: b}}}, "cairn.p1.buckets.b1.delete", bAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_UploadProgressed{UploadProgressed: &eventsv1.UploadProgressed{Upload: up}}}, "cairn.p1.buckets.b1.files.f1.upload", fAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_UploadAbandoned{UploadAbandoned: &eventsv1.UploadAbandoned{Upload: up}}}, "cairn.p1.buckets.b1.files.f1.abandon", fAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_FileCreated{FileCreated: &eventsv1.FileCreated{File: f}}}, "cairn.p1.buckets.b1.files.f1.create", fAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_FileUpdated{FileUpdated: &eventsv1.FileUpdated{File: f}}}, "cairn.p1.buckets.b1.files.f1.update", fAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_FileDeleted{FileDeleted: &eventsv1.FileDeleted{File: f}}}, "cairn.p1.buckets.b1.files.f1.delete", fAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_FileTokenCreated{FileTokenCreated: &eventsv1.FileTokenCreated{Token: tok}}}, "cairn.p1.buckets.b1.files.f1.tokens.t1.create", tAgg},
		{&eventsv1.Envelope{Payload: &eventsv1.Envelope_FileTokenDeleted{FileTokenDeleted: &eventsv1.FileTokenDeleted{Token: tok}}}, "cairn.p1.buckets.b1.files.f1.tokens.t1.delete", tAgg},
	}
	aggs := []eventlog.Aggregate{bAgg, fAgg, tAgg, eventlog.FileAggregate("p1", "b1", "f2"), eventlog.BucketAggregate("p1", "b2")}
	for _, c := range cases {
		got, err := eventlog.Subject(c.env)
		if err != nil || got != c.want {
			t.Errorf("%T: subject %q, %v; want %q", c.env.GetPayload(), got, err, c.want)
		}
		for _, a := range aggs {
			if in := server.SubjectMatchesFilter(got, a.Filter); in != (a == c.agg) {
				t.Errorf("%s in aggregate %s: %v", got, a.Filter, in)
			}
		}
	}
}
