package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/projections/indexkey"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Databases, applied from the project's stream:
//
//	p/<project>/dbs/<db>                   eventsv1.Database
//	p/<project>/colls/<db>/<coll>          eventsv1.Collection (index statuses as built here)
//	p/<project>/docs/<collUID>/<doc>       eventsv1.Document (sequence and version set)
//	p/<project>/ix/<collUID>/<ixUID>/<k>   document id and carried members (carry.go); k = encoded values + sequence
//	p/<project>/gc/<uid>                   a key prefix left to delete in the background
//
// Documents and index entries live under the collection's UID, not its id:
// deleting a collection (or its database) removes one key and leaves the
// rest to a background sweep, so no transaction has to hold them all, and
// a collection created again under the same id starts empty.
//
// Every collection has four implicit indexes besides the ones its schema
// declares: $id, $sequence (the default order), $createdAt and $updatedAt.
// Indexes are built while applying the event that creates them, so the
// result (available, or failed with the duplicate value of a unique
// index) is the same on every node and in every rebuild. The entries are
// written in chunks of their own transactions (buildIndex), the event and
// its checkpoint last: no collection is too large for an index, and no
// reader sees one half built.
const (
	partDatabases   = "dbs/"
	partCollections = "colls/"
	partDocuments   = "docs/"
	partIndexes     = "ix/"
	partGarbage     = "gc/"
)

// indexBuildChunk is how many documents' entries one transaction of an
// index build holds: a few hundred KB, far below the transaction limit of
// the smallest memtable Cairn allows (see cmd/cairn's --badger-memtable).
const indexBuildChunk = 1000

// Implicit index UIDs (never a ULID).
const (
	ixID        = "$id"
	ixSequence  = "$sequence"
	ixCreatedAt = "$createdAt"
	ixUpdatedAt = "$updatedAt"
)

// implicitIndexes are every collection's own indexes.
var implicitIndexes = []database.Index{
	{Key: ixSequence, Type: database.IndexKey, Attributes: []string{database.AttrSequence}, Desc: []bool{false}, Status: database.StatusAvailable, UID: ixSequence},
	{Key: ixID, Type: database.IndexUnique, Attributes: []string{database.AttrID}, Desc: []bool{false}, Status: database.StatusAvailable, UID: ixID},
	{Key: ixCreatedAt, Type: database.IndexKey, Attributes: []string{database.AttrCreatedAt}, Desc: []bool{false}, Status: database.StatusAvailable, UID: ixCreatedAt},
	{Key: ixUpdatedAt, Type: database.IndexKey, Attributes: []string{database.AttrUpdatedAt}, Desc: []bool{false}, Status: database.StatusAvailable, UID: ixUpdatedAt},
}

func pp(project string) string { return projectPrefix + project + "/" }

func databasesPrefix(project string) string { return pp(project) + partDatabases }
func databaseKey(project, id string) []byte { return []byte(databasesPrefix(project) + id) }
func collectionsPrefix(project, db string) string {
	return pp(project) + partCollections + db + "/"
}
func collectionKey(project, db, id string) []byte {
	// One allocation rather than a string and its copy (once per event).
	k := make([]byte, 0, len(projectPrefix)+len(project)+1+len(partCollections)+len(db)+1+len(id))
	k = append(append(append(k, projectPrefix...), project...), '/')
	return append(append(append(append(k, partCollections...), db...), '/'), id...)
}
func documentsPrefix(project, collUID string) string {
	return pp(project) + partDocuments + collUID + "/"
}
func documentKey(project, collUID, id string) []byte {
	// One allocation rather than a string and its copy (once per event).
	k := make([]byte, 0, len(projectPrefix)+len(project)+1+len(partDocuments)+len(collUID)+1+len(id))
	k = append(append(append(k, projectPrefix...), project...), '/')
	return append(append(append(append(k, partDocuments...), collUID...), '/'), id...)
}
func indexPrefix(project, collUID, ixUID string) []byte {
	return []byte(pp(project) + partIndexes + collUID + "/" + ixUID + "/")
}
func collectionIndexesPrefix(project, collUID string) string {
	return pp(project) + partIndexes + collUID + "/"
}
func garbagePrefix(project string) string { return pp(project) + partGarbage }

func checkIn(sp keyspace, ev event, what, project string, ids ...string) error {
	if sp.project == "" {
		return fatal("%s seq %d: %s event in the system stream", sp.stream, ev.msg.Seq, what)
	}
	if project != sp.project {
		return fatal("%s seq %d (event %s): %s of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), what, project)
	}
	for _, id := range ids {
		if badToken(id) {
			return fatal("%s seq %d (event %s): bad %s id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), what, id)
		}
	}
	return nil
}

func (p *Projections) applyDatabasePut(txn *badger.Txn, sp keyspace, ev event, db *eventsv1.Database) error {
	if err := checkIn(sp, ev, "database", db.GetProjectId(), db.GetId()); err != nil {
		return err
	}
	b, err := marshal(db)
	if err != nil {
		return fatal("encode database %s: %w", db.GetId(), err)
	}
	return txn.Set(databaseKey(sp.project, db.GetId()), b)
}

func (p *Projections) applyDatabaseDeleted(txn *badger.Txn, sp keyspace, ev event, db *eventsv1.Database) error {
	if err := checkIn(sp, ev, "database", db.GetProjectId(), db.GetId()); err != nil {
		return err
	}
	var colls []*eventsv1.Collection
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(collectionsPrefix(sp.project, db.GetId())), PrefetchValues: true})
	for it.Rewind(); it.Valid(); it.Next() {
		c := &eventsv1.Collection{}
		if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, c) }); err != nil {
			it.Close()
			return fatal("decode collection %s: %w", it.Item().Key(), err)
		}
		colls = append(colls, c)
	}
	it.Close()
	for _, c := range colls {
		if err := p.dropCollection(txn, ev, sp.project, c); err != nil {
			return err
		}
	}
	return txn.Delete(databaseKey(sp.project, db.GetId()))
}

// liveDatabase returns the collection's database if it is the one the
// collection was made in.
func liveDatabase(txn *badger.Txn, project string, c *eventsv1.Collection) (bool, error) {
	db := &eventsv1.Database{}
	found, err := getIn(txn, databaseKey(project, c.GetDatabaseId()), db)
	if err != nil || !found {
		return false, err
	}
	return db.GetUid() == c.GetDatabaseUid(), nil
}

// applyCollectionPut stores a collection's new state, building the indexes
// it declares for the first time and dropping the ones it no longer has.
//
// A new index is built before the event's transaction commits, in
// transactions of its own (an effect, so the event commits alone and the
// build reads everything before it): see buildIndex. A bulk run only
// decides its status here (decideIndex).
func (p *Projections) applyCollectionPut(txn *badger.Txn, sp keyspace, ev event, c *eventsv1.Collection) (effect, error) {
	if err := checkIn(sp, ev, "collection", c.GetProjectId(), c.GetId(), c.GetDatabaseId(), c.GetUid()); err != nil {
		return effect{}, err
	}
	if ok, err := liveDatabase(txn, sp.project, c); err != nil || !ok {
		return effect{}, err // written while its database was being deleted
	}
	key := collectionKey(sp.project, c.GetDatabaseId(), c.GetId())
	old := &eventsv1.Collection{}
	found, err := getIn(txn, key, old)
	if err != nil {
		return effect{}, err
	}
	if found && old.GetUid() != c.GetUid() {
		if err := p.dropCollection(txn, ev, sp.project, old); err != nil {
			return effect{}, err
		}
		found = false
	}
	c = proto.Clone(c).(*eventsv1.Collection)
	built := map[string]*eventsv1.Index{}
	if found {
		for _, ix := range old.GetIndexes() {
			built[ix.GetUid()] = ix
		}
	}
	schema, err := database.SchemaOf(c)
	if err != nil {
		return effect{}, fatal("%s seq %d: %w", sp.stream, ev.msg.Seq, err)
	}
	var builds []*eventsv1.Index
	for _, ix := range c.GetIndexes() {
		if prev, ok := built[ix.GetUid()]; ok {
			ix.Status, ix.Error = prev.GetStatus(), prev.GetError()
			delete(built, ix.GetUid())
			continue
		}
		if sp.bulk == nil {
			builds = append(builds, ix)
			continue
		}
		status, msg, err := p.decideIndex(txn, sp, c, schema, database.IndexFromEvent(ix))
		if err != nil {
			return effect{}, err
		}
		ix.Status, ix.Error = string(status), msg
	}
	for uid := range built { // dropped from the schema
		if err := p.dropPrefix(txn, sp.project, uid, indexPrefix(sp.project, c.GetUid(), uid)); err != nil {
			return effect{}, err
		}
	}
	put := func() error {
		b, err := marshal(c)
		if err != nil {
			return fatal("encode collection %s: %w", c.GetId(), err)
		}
		p.colls.changed()
		return txn.Set(key, b)
	}
	if len(builds) == 0 {
		return effect{}, put()
	}
	return effect{pre: func(ctx context.Context) error {
		for _, ix := range builds {
			status, msg, err := p.buildIndex(ctx, sp, c, schema, database.IndexFromEvent(ix))
			if err != nil {
				return fmt.Errorf("%s seq %d: build index %s: %w", sp.stream, ev.msg.Seq, ix.GetKey(), err)
			}
			ix.Status, ix.Error = string(status), msg
		}
		return put()
	}}, nil
}

func (p *Projections) applyCollectionDeleted(txn *badger.Txn, sp keyspace, ev event, c *eventsv1.Collection) error {
	if err := checkIn(sp, ev, "collection", c.GetProjectId(), c.GetId(), c.GetDatabaseId()); err != nil {
		return err
	}
	old := &eventsv1.Collection{}
	found, err := getIn(txn, collectionKey(sp.project, c.GetDatabaseId(), c.GetId()), old)
	if err != nil || !found || old.GetUid() != c.GetUid() {
		return err
	}
	return p.dropCollection(txn, ev, sp.project, old)
}

// dropCollection removes a collection; its documents and index entries go
// in the background.
func (p *Projections) dropCollection(txn *badger.Txn, ev event, project string, c *eventsv1.Collection) error {
	p.colls.changed()
	if err := txn.Delete(collectionKey(project, c.GetDatabaseId(), c.GetId())); err != nil {
		return err
	}
	if err := dropDocuments(txn, project, ev, c.GetUid()); err != nil {
		return err
	}
	if err := p.dropPrefix(txn, project, c.GetUid()+"-docs", []byte(documentsPrefix(project, c.GetUid()))); err != nil {
		return err
	}
	return p.dropPrefix(txn, project, c.GetUid()+"-ix", []byte(collectionIndexesPrefix(project, c.GetUid())))
}

// dropPrefix records prefix for the background sweep (Projections.collect).
func (p *Projections) dropPrefix(txn *badger.Txn, project, id string, prefix []byte) error {
	p.garbage.Store(true)
	return txn.Set([]byte(garbagePrefix(project)+id), prefix)
}

// schemaCache keeps decoded schemas. A collection's stored state (with its
// index statuses) is fixed for one (UID, version), so entries never go
// stale; the map is only bounded.
type schemaCache struct {
	mu sync.Mutex
	m  map[schemaKey]*database.Schema
}

type schemaKey struct {
	uid     string
	version uint64
}

func (s *schemaCache) get(c *eventsv1.Collection) (*database.Schema, error) {
	key := schemaKey{c.GetUid(), c.GetVersion()}
	s.mu.Lock()
	sc, ok := s.m[key]
	s.mu.Unlock()
	if ok {
		return sc, nil
	}
	sc, err := database.SchemaOf(c)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.m == nil || len(s.m) > 4096 {
		s.m = map[schemaKey]*database.Schema{}
	}
	s.m[key] = sc
	s.mu.Unlock()
	return sc, nil
}

// Fields returns a document's typed data as schema reads it, with the
// system attributes, for query evaluation.
func Fields(schema *database.Schema, d *eventsv1.Document) (map[string]any, error) {
	return fieldsOf(schema, headOf(d))
}

// headOf is the docHead of d.
func headOf(d *eventsv1.Document) docHead {
	return docHead{id: d.GetId(), data: d.GetDataJson(), created: d.GetCreatedAt().AsTime(),
		updated: d.GetUpdatedAt().AsTime(), seq: d.GetSequence(), version: d.GetSchemaVersion()}
}

// docHead is what Fields reads of a document.
type docHead struct {
	id, data         string
	created, updated time.Time
	seq, version     uint64
}

func fieldsOf(schema *database.Schema, h docHead) (map[string]any, error) {
	return fieldsOfOnly(schema, h, nil)
}

// fieldsOfOnly is fieldsOf with only the attributes keep accepts (all when
// nil), and every system attribute.
func fieldsOfOnly(schema *database.Schema, h docHead, keep func(string) bool) (map[string]any, error) {
	return fieldsOfInto(schema, h, keep, nil, nil)
}

// fieldsOfInto is fieldsOfOnly with out and scratch as for
// Schema.DecodeDataInto.
func fieldsOfInto(schema *database.Schema, h docHead, keep func(string) bool, out, scratch map[string]any) (map[string]any, error) {
	data, err := schema.DecodeDataInto(out, scratch, h.data, h.version, keep)
	if err != nil {
		return nil, fmt.Errorf("document %s: %w", h.id, err)
	}
	data[database.AttrID] = h.id
	data[database.AttrCreatedAt] = h.created.Truncate(database.DatetimePrecision)
	data[database.AttrUpdatedAt] = h.updated.Truncate(database.DatetimePrecision)
	data[database.AttrSequence] = int64(h.seq)
	return data, nil
}

// readHead reads a stored document's docHead from its encoding, leaving
// the rest (permissions, project and collection ids) undecoded. Fields
// merge as proto.Unmarshal merges them: the last scalar wins, repeated
// timestamps merge field by field.
func readHead(b []byte) (docHead, error) {
	var h docHead
	var ts [2]struct {
		sec   int64
		nanos int32
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == docFieldID || num == docFieldData) && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if num == docFieldID {
				h.id = string(v)
			} else {
				h.data = string(v)
			}
		case (num == docFieldCreatedAt || num == docFieldUpdatedAt) && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			t := &ts[num-docFieldCreatedAt]
			for len(v) > 0 && n >= 0 {
				tnum, ttyp, m := protowire.ConsumeTag(v)
				if m < 0 {
					return h, protowire.ParseError(m)
				}
				v = v[m:]
				var x uint64
				switch {
				case tnum == 1 && ttyp == protowire.VarintType:
					x, m = protowire.ConsumeVarint(v)
					t.sec = int64(x)
				case tnum == 2 && ttyp == protowire.VarintType:
					x, m = protowire.ConsumeVarint(v)
					t.nanos = int32(x)
				default:
					m = protowire.ConsumeFieldValue(tnum, ttyp, v)
				}
				if m < 0 {
					return h, protowire.ParseError(m)
				}
				v = v[m:]
			}
		case (num == docFieldSequence || num == docFieldSchemaVersion) && typ == protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(b)
			if num == docFieldSequence {
				h.seq = x
			} else {
				h.version = x
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return h, protowire.ParseError(n)
		}
		b = b[n:]
	}
	h.created = time.Unix(ts[0].sec, int64(ts[0].nanos)).UTC()
	h.updated = time.Unix(ts[1].sec, int64(ts[1].nanos)).UTC()
	return h, nil
}

// Field numbers of eventsv1.Document that readHead reads (a test checks
// them against the descriptor).
const (
	docFieldID            = 1
	docFieldData          = 6
	docFieldCreatedAt     = 8
	docFieldUpdatedAt     = 9
	docFieldSequence      = 10
	docFieldSchemaVersion = 11
)

// indexKeys returns the entry keys of one index for a document.
func indexKeys(project, collUID string, ix database.Index, fields map[string]any, seq uint64) ([][]byte, error) {
	buf, ends, err := appendIndexKeys(nil, nil, indexPrefix(project, collUID, ix.UID), ix, fields, seq)
	if err != nil {
		return nil, err
	}
	return splitKeys(buf, 0, ends, nil), nil
}

// appendIndexKeys appends one index's entry keys for a document (prefix
// is indexPrefix's) to buf, one after another, and each one's end to
// ends: a rebuild works out many documents' keys in one buffer.
func appendIndexKeys(buf []byte, ends []int, prefix []byte, ix database.Index, fields map[string]any, seq uint64) ([]byte, []int, error) {
	if ix.Type == database.IndexFulltext {
		s, _ := fields[ix.Attributes[0]].(string)
		for _, t := range query.Tokens(s) {
			var err error
			if buf, err = indexkey.Append(append(buf, prefix...), t, false); err != nil {
				return buf, ends, err
			}
			buf = indexkey.AppendSeq(buf, seq)
			ends = append(ends, len(buf))
		}
		return buf, ends, nil
	}
	buf = append(buf, prefix...)
	for i, a := range ix.Attributes {
		v, desc := fields[a], ix.Desc[i]
		if cell, ok := geoKey(v); ok {
			v, desc = cell, false // a point's entry is its cell (geo.go), always ascending
		}
		var err error
		if buf, err = indexkey.Append(buf, v, desc); err != nil {
			return buf, ends, fmt.Errorf("index %s attribute %s: %w", ix.Key, a, err)
		}
	}
	buf = indexkey.AppendSeq(buf, seq)
	return buf, append(ends, len(buf)), nil
}

// splitKeys appends to keys the keys appendIndexKeys wrote in buf from
// start, each with its capacity cut to its length so that nobody appends
// into the next.
func splitKeys(buf []byte, start int, ends []int, keys [][]byte) [][]byte {
	for _, end := range ends {
		keys = append(keys, buf[start:end:end])
		start = end
	}
	return keys
}

// allIndexes is the collection's indexes the projection maintains: the
// implicit ones and every declared one that did not fail.
func allIndexes(schema *database.Schema) []database.Index {
	out := append([]database.Index(nil), implicitIndexes...)
	for _, ix := range schema.Indexes {
		if ix.Status != database.StatusFailed {
			out = append(out, ix)
		}
	}
	return out
}

// buildIndex writes ix's entries for every document of c in transactions
// of indexBuildChunk documents, or reports why it cannot: a value a unique
// index would hold twice (then what it wrote is deleted again). It runs
// before the transaction of the event that declares ix commits, on the
// projector's goroutine, so:
//   - the stored collection does not list ix until that commit: no query
//     uses a half-built index;
//   - no document changes meanwhile (the next event waits), and every one
//     written after it is indexed by applyDocument: each exactly once;
//   - a delete of ix or of c is a later event, applied after the build;
//   - a crash or stop before the commit leaves the checkpoint before the
//     event: it is applied again, and the build starts over, first
//     deleting what the cut-short one wrote (ix's UID is its own prefix).
func (p *Projections) buildIndex(ctx context.Context, sp keyspace, c *eventsv1.Collection, schema *database.Schema, ix database.Index) (database.Status, string, error) {
	prefix := indexPrefix(sp.project, c.GetUid(), ix.UID)
	if err := p.clearPrefix(prefix); err != nil {
		return "", "", err
	}
	b := &indexBuild{p: p, unique: map[string]string{}}
	defer b.close()
	status, msg := database.StatusAvailable, ""
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(documentsPrefix(sp.project, c.GetUid())), PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		docs := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if docs++; docs%indexBuildChunk == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := b.flush(); err != nil {
					return err
				}
				if p.onIndexChunk != nil {
					if err := p.onIndexChunk(ctx, docs/indexBuildChunk); err != nil {
						return err
					}
				}
			}
			var h docHead
			if err := it.Item().Value(func(v []byte) (err error) {
				h, err = readHead(v)
				return err
			}); err != nil {
				return fatal("decode document %s: %w", it.Item().Key(), err)
			}
			f, err := fieldsOf(schema, h)
			if err != nil {
				return fatal("%w", err)
			}
			ks, err := indexKeys(sp.project, c.GetUid(), ix, f, h.seq)
			if err != nil {
				status, msg = database.StatusFailed, err.Error()
				return nil
			}
			// Nulls are not unique values (database.UniqueValue is "").
			if uv := database.UniqueValue(ix, f); ix.Type == database.IndexUnique && uv != "" {
				v := ks[0][:len(ks[0])-8]
				other, dup, err := b.holder(v)
				if err != nil {
					return err
				}
				if dup {
					status, msg = database.StatusFailed, fmt.Sprintf("documents %q and %q have the same %s: %s", other, h.id, strings.Join(ix.Attributes, ", "), uv)
					return nil
				}
				b.unique[string(v)] = h.id
			}
			v := entryValue(h)
			for _, k := range ks {
				b.keys, b.vals = append(b.keys, k), append(b.vals, v)
			}
		}
		return b.flush()
	})
	if err != nil {
		return "", "", err
	}
	if status == database.StatusFailed {
		b.keys, b.vals = nil, nil
		if err := p.clearPrefix(prefix); err != nil {
			return "", "", err
		}
	}
	return status, msg, nil
}

// indexBuild is one buildIndex's chunk: the entries to write, and for a
// unique index the values it holds, with a read of what earlier chunks
// committed.
type indexBuild struct {
	p      *Projections
	keys   [][]byte
	vals   [][]byte          // entryValue of each key's document
	unique map[string]string // this chunk's unique values → document id
	look   *badger.Txn       // sees the chunks committed before this one
}

// holder returns the document whose entry holds the unique value v (an
// entry key without its sequence), if any.
func (b *indexBuild) holder(v []byte) (string, bool, error) {
	if id, ok := b.unique[string(v)]; ok {
		return id, true, nil
	}
	if b.look == nil {
		b.look = b.p.db.NewTransaction(false)
	}
	it := b.look.NewIterator(badger.IteratorOptions{Prefix: v, PrefetchValues: false})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if len(it.Item().Key()) != len(v)+8 {
			continue // a longer value that starts with v (see UniqueHolder)
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return "", false, err
		}
		id, _, _ := parseEntryValue(string(v))
		return id, true, nil
	}
	return "", false, nil
}

// flush commits the chunk's entries.
func (b *indexBuild) flush() error {
	b.close()
	clear(b.unique)
	if len(b.keys) == 0 {
		return nil
	}
	b.p.gate.RLock()
	defer b.p.gate.RUnlock()
	wb := b.p.db.NewWriteBatch()
	defer wb.Cancel()
	for i, k := range b.keys {
		if err := wb.Set(k, b.vals[i]); err != nil {
			return err
		}
	}
	b.keys, b.vals = b.keys[:0], b.vals[:0]
	return wb.Flush()
}

func (b *indexBuild) close() {
	if b.look != nil {
		b.look.Discard()
		b.look = nil
	}
}

// clearPrefix deletes every key under prefix, a bounded batch at a time.
func (p *Projections) clearPrefix(prefix []byte) error {
	p.gate.RLock()
	defer p.gate.RUnlock()
	for {
		done, err := p.deleteSome(prefix, 10_000)
		if done || err != nil {
			return err
		}
	}
}

// decideIndex is buildIndex for a bulk run: it decides the status the
// same way and writes nothing (buildIndexesInBulk writes the entries of
// the final documents). Reading within the bulk transaction, it sees the
// documents of the events before it that are not committed yet.
func (p *Projections) decideIndex(txn *badger.Txn, sp keyspace, c *eventsv1.Collection, schema *database.Schema, ix database.Index) (database.Status, string, error) {
	project := sp.project
	seen := map[string]string{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(documentsPrefix(project, c.GetUid())), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var h docHead
		if err := it.Item().Value(func(v []byte) (err error) {
			h, err = readHead(v)
			return err
		}); err != nil {
			return "", "", fatal("decode document %s: %w", it.Item().Key(), err)
		}
		f, err := fieldsOf(schema, h)
		if err != nil {
			return "", "", fatal("%w", err)
		}
		ks, err := indexKeys(project, c.GetUid(), ix, f, h.seq)
		if err != nil {
			return database.StatusFailed, err.Error(), nil
		}
		if ix.Type != database.IndexUnique {
			continue // only a unique index can fail on values that encode
		}
		if uv := database.UniqueValue(ix, f); uv != "" {
			v := string(ks[0][:len(ks[0])-8])
			if other, dup := seen[v]; dup {
				return database.StatusFailed, fmt.Sprintf("documents %q and %q have the same %s: %s", other, h.id, strings.Join(ix.Attributes, ", "), uv), nil
			}
			seen[v] = h.id
		}
	}
	return database.StatusAvailable, "", nil
}

// applyDocument applies a document's create, update or delete: its stored
// state and its entries in every index of its collection.
//
// It is most of a document stream's replay, so it does only what changes
// the read model: the collection comes decoded from collCache, the old
// state is read as its head (readHead), and an index entry the old and the
// new state share (the id, the sequence, the creation time, and whatever
// attributes the change left alone) is neither deleted nor written again.
func (p *Projections) applyDocument(txn *badger.Txn, sp keyspace, ev event, d *eventsv1.Document, deleted bool) error {
	ce, key, err := p.documentIn(txn, sp, ev, d.GetProjectId(), d.GetDatabaseId(), d.GetCollectionId(), d.GetCollectionUid(), d.GetId())
	if err != nil || ce == nil {
		return err
	}
	if sp.bulk != nil {
		return p.applyDocumentBulk(txn, sp, ev, key, bulkDocOf(d, deleted))
	}
	return p.putDocument(txn, sp, ev, ce, key, decodedDoc{d}, deleted)
}

// newDocument is a document event's document, decoded or not (rawDoc).
type newDocument interface {
	// sequence is the event's document's sequence (0: none yet).
	sequence() uint64
	// state is its stored state with seq and version, and that state's head.
	state(seq, version uint64) (docHead, []byte, error)
}

type decodedDoc struct{ d *eventsv1.Document }

func (x decodedDoc) sequence() uint64 { return x.d.GetSequence() }

func (x decodedDoc) state(seq, version uint64) (docHead, []byte, error) {
	// Set on the event's own message and put back after, rather than
	// cloned (a retried transaction applies the same event again).
	d := x.d
	was, wasVersion := d.GetSequence(), d.GetVersion()
	defer func() { d.Sequence, d.Version = was, wasVersion }()
	d.Sequence, d.Version = seq, version
	b, err := marshal(d)
	return headOf(d), b, err
}

// rawNew is a rawDoc as a newDocument: its stored state written from the
// event's bytes (rawDoc.stored), its head read back from them.
type rawNew struct{ r *rawDoc }

func (x rawNew) sequence() uint64 { return x.r.seq }

func (x rawNew) state(seq, version uint64) (docHead, []byte, error) {
	b := x.r.stored(seq, version)
	h, err := readHead(b)
	return h, b, err
}

// putDocument is applyDocument's live part, for a decoded or a raw
// document.
func (p *Projections) putDocument(txn *badger.Txn, sp keyspace, ev event, ce *collEntry, key []byte, d newDocument, deleted bool) error {
	collUID := ce.c.GetUid()
	old, had, err := docHeadIn(txn, key)
	if err != nil {
		return err
	}
	var oldKeys [][]byte
	if had {
		f, err := fieldsOf(ce.schema, old)
		if err != nil {
			return fatal("%w", err)
		}
		if oldKeys, err = allIndexKeys(sp.project, collUID, ce.indexes, f, old.seq); err != nil {
			return fatal("%w", err)
		}
	}
	if deleted {
		if !had {
			return nil
		}
		if err := sp.addDocuments(txn, ev, collUID, -1); err != nil {
			return err
		}
		for _, k := range oldKeys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return txn.Delete(key)
	}
	if !had {
		if err := sp.addDocuments(txn, ev, collUID, 1); err != nil {
			return err
		}
	}
	// The stored state is the event's with the read model's sequence and
	// version.
	seq := d.sequence()
	switch {
	case had:
		seq = old.seq
	case seq == 0:
		seq = ev.msg.Seq
	}
	head, b, err := d.state(seq, ev.msg.Seq)
	if err != nil {
		return fatal("encode document %s: %w", head.id, err)
	}
	f, err := fieldsOf(ce.schema, head)
	if err != nil {
		return fatal("%w", err)
	}
	newKeys, err := allIndexKeys(sp.project, collUID, ce.indexes, f, seq)
	if err != nil {
		return fatal("%w", err)
	}
	for _, k := range oldKeys {
		if !containsKey(newKeys, k) {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
	}
	// An entry both states share is written again only when what it
	// carries changed.
	val := entryValue(head)
	rewrite := !had || !bytes.Equal(entryValue(old), val)
	for _, k := range newKeys {
		if rewrite || !containsKey(oldKeys, k) {
			if err := txn.Set(k, val); err != nil {
				return err
			}
		}
	}
	return txn.Set(key, b)
}

// documentIn checks a document event's ids and returns its collection and
// the document's key, or no collection when the event is to be skipped:
// written while its collection was being deleted.
func (p *Projections) documentIn(txn *badger.Txn, sp keyspace, ev event, project, db, coll, collUID, id string) (*collEntry, []byte, error) {
	if err := checkIn(sp, ev, "document", project, id, db, coll); err != nil {
		return nil, nil, err
	}
	ce, err := p.colls.get(txn, &p.schemas, collectionKey(sp.project, db, coll))
	if err != nil {
		if isFatal(err) {
			return nil, nil, fatal("%s seq %d: %w", sp.stream, ev.msg.Seq, err)
		}
		return nil, nil, err
	}
	if ce == nil || ce.c.GetUid() != collUID {
		return nil, nil, nil
	}
	return ce, documentKey(sp.project, collUID, id), nil
}

// docHeadIn reads the head of the document stored at key, if any.
func docHeadIn(txn *badger.Txn, key []byte) (docHead, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return docHead{}, false, nil
	}
	if err != nil {
		return docHead{}, false, err
	}
	var h docHead
	if err := item.Value(func(v []byte) error {
		h, err = readHead(v)
		return err
	}); err != nil {
		return docHead{}, false, fatal("decode %s: %w", key, err)
	}
	return h, true, nil
}

// allIndexKeys returns a document's entry keys in every index of indexes,
// written one after another into one buffer (the live projector builds
// them for every document event: one allocation for the keys instead of
// a few per index).
func allIndexKeys(project, collUID string, indexes []database.Index, fields map[string]any, seq uint64) ([][]byte, error) {
	// The collection's part of every prefix once; each index appends its
	// own ("<ixUID>/") after it, as indexPrefix spells it.
	base := len(projectPrefix) + len(project) + 1 + len(partIndexes) + len(collUID) + 1
	size := 0
	for _, ix := range indexes {
		size += 2 * (base + len(ix.UID) + 1 + 24) // room for a key or two; append grows it if not
	}
	buf := make([]byte, 0, size)
	ends := make([]int, 0, len(indexes)+4)
	prefix := make([]byte, 0, base+40)
	prefix = append(append(append(append(append(append(prefix, projectPrefix...), project...), '/'), partIndexes...), collUID...), '/')
	for _, ix := range indexes {
		p := append(append(prefix[:base], ix.UID...), '/')
		var err error
		if buf, ends, err = appendIndexKeys(buf, ends, p, ix, fields, seq); err != nil {
			return nil, err
		}
		prefix = p[:base] // keep a grown backing array
	}
	return splitKeys(buf, 0, ends, make([][]byte, 0, len(ends))), nil
}

// containsKey reports whether keys holds k; a document has a handful of
// index entries (more only with fulltext), so a scan beats a map.
func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// Database returns a project's database; ErrNotFound if there is none.
func (p *Projections) Database(project, id string) (*eventsv1.Database, error) {
	db := &eventsv1.Database{}
	if err := p.getProto(project, id, databaseKey(project, id), db); err != nil {
		return nil, fmt.Errorf("database %s of project %s: %w", id, project, err)
	}
	return db, nil
}

// ListDatabases returns up to limit databases with ids after `after`.
func (p *Projections) ListDatabases(project, after string, limit int) ([]*eventsv1.Database, error) {
	var out []*eventsv1.Database
	err := p.list(databasesPrefix(project), after, limit, func(v []byte) error {
		db := &eventsv1.Database{}
		out = append(out, db)
		return proto.Unmarshal(v, db)
	})
	return out, err
}

// Collection returns a collection with its indexes' statuses as this node
// built them; ErrNotFound if there is none.
func (p *Projections) Collection(project, db, id string) (*eventsv1.Collection, error) {
	c := &eventsv1.Collection{}
	if badToken(db) {
		return nil, ErrNotFound
	}
	if err := p.getProto(project, id, collectionKey(project, db, id), c); err != nil {
		return nil, fmt.Errorf("collection %s/%s of project %s: %w", db, id, project, err)
	}
	return c, nil
}

// ListCollections returns up to limit collections of a database.
func (p *Projections) ListCollections(project, db, after string, limit int) ([]*eventsv1.Collection, error) {
	if badToken(db) {
		return nil, nil
	}
	var out []*eventsv1.Collection
	err := p.list(collectionsPrefix(project, db), after, limit, func(v []byte) error {
		c := &eventsv1.Collection{}
		out = append(out, c)
		return proto.Unmarshal(v, c)
	})
	return out, err
}

// Document returns a document of collection c; ErrNotFound if none.
func (p *Projections) Document(project string, c *eventsv1.Collection, id string) (*eventsv1.Document, error) {
	d := &eventsv1.Document{}
	var err error
	if p.docs.on() {
		err = p.cachedDocument(project, c, id, d)
	} else {
		err = p.getProto(project, id, documentKey(project, c.GetUid(), id), d)
	}
	if err != nil {
		return nil, fmt.Errorf("document %s of collection %s: %w", id, c.GetId(), err)
	}
	return d, nil
}

// cachedDocument is Document through the document cache (doccache.go).
func (p *Projections) cachedDocument(project string, c *eventsv1.Collection, id string, d *eventsv1.Document) error {
	if err := checkRecordID(project, id); err != nil {
		return err
	}
	stream, coll := projectSpace(project).stream, collKey(c.GetDatabaseId(), c.GetId())
	// Read before the snapshot: bytes are kept under a version no newer
	// than they are.
	version := p.state(stream).docVersion(coll)
	raw := p.docs.get(stream, coll, c.GetUid(), id, version)
	if raw == nil {
		err := p.get(documentKey(project, c.GetUid(), id), func(v []byte) error {
			raw = bytes.Clone(v)
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			return err
		}
		if err != nil {
			return fmt.Errorf("projections: %w", err)
		}
		p.docs.put(stream, coll, c.GetUid(), id, version, raw)
	}
	if err := proto.Unmarshal(raw, d); err != nil {
		return fmt.Errorf("projections: decode document %s: %w", id, err)
	}
	return nil
}

// Schema returns the decoded schema of a collection as stored.
func (p *Projections) Schema(c *eventsv1.Collection) (*database.Schema, error) {
	return p.schemas.get(c)
}

// UniqueHolder returns the id of a document other than self whose values
// of unique index ix equal those in fields, if one exists.
func (p *Projections) UniqueHolder(project string, c *eventsv1.Collection, ix database.Index, fields map[string]any, self string) (string, bool, error) {
	if database.UniqueValue(ix, fields) == "" { // nulls are not unique values
		return "", false, nil
	}
	ks, err := indexKeys(project, c.GetUid(), ix, fields, 0)
	if err != nil {
		return "", false, err
	}
	prefix := ks[0][:len(ks[0])-8]
	holder := ""
	err = p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 2})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(it.Item().Key()) != len(prefix)+8 {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			id, _, ok := parseEntryValue(string(v))
			if !ok {
				return fmt.Errorf("index %s: malformed entry %q", ix.Key, it.Item().Key())
			}
			if id != self {
				holder = id
				return nil
			}
		}
		return nil
	})
	return holder, holder != "", err
}

// collectGarbage deletes the prefixes dropped collections and indexes left
// behind (the gc/ markers of every registered project), a bounded batch at
// a time. It reports whether any was found.
func (p *Projections) collectGarbage(limit int) (bool, error) {
	type job struct{ marker, prefix []byte }
	var jobs []job
	err := p.db.View(func(txn *badger.Txn) error {
		projects := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(sysProjects)})
		defer projects.Close()
		for projects.Rewind(); projects.Valid(); projects.Next() {
			id := string(projects.Item().Key()[len(sysProjects):])
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(garbagePrefix(id)), PrefetchValues: true})
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				jobs = append(jobs, job{it.Item().KeyCopy(nil), v})
			}
			it.Close()
		}
		return nil
	})
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	for _, j := range jobs {
		done, err := p.deleteSome(j.prefix, limit)
		if err != nil {
			return true, err
		}
		if done {
			if err := p.db.Update(func(txn *badger.Txn) error { return txn.Delete(j.marker) }); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// CollectGarbage deletes now everything dropped collections and indexes
// left for the background sweep.
func (p *Projections) CollectGarbage() error {
	for {
		more, err := p.collectGarbage(10_000)
		if err != nil || !more {
			return err
		}
	}
}

// deleteSome deletes up to max keys under prefix and reports whether none
// is left.
func (p *Projections) deleteSome(prefix []byte, max int) (bool, error) {
	var keys [][]byte
	err := p.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(keys) <= max; it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("projections: list %s: %w", prefix, err)
	}
	done := len(keys) <= max
	keys = keys[:min(len(keys), max)]
	wb := p.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return false, fmt.Errorf("projections: delete %s: %w", prefix, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return false, fmt.Errorf("projections: delete %s: %w", prefix, err)
	}
	return done, nil
}

// garbageCollector runs collectGarbage while anything was dropped.
func (p *Projections) garbageCollector() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.baseCtx.Done():
			return
		case <-t.C:
		}
		if !p.garbage.Load() {
			continue
		}
		more, err := p.collectGarbage(10_000)
		if err != nil {
			p.log.Warn("collecting dropped documents", "err", err)
			continue
		}
		if !more {
			p.garbage.Store(false)
		}
	}
}
