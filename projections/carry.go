package projections

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/database/query"
)

// Index entry values.
//
// An index entry's value names the document it points to. It also carries
// the document's small top-level data members, its schema version and its
// creation time, so that a query the index does not order (a sort in
// memory) or does not fully answer (a residual filter) tests and ranks the
// entries it scans without reading their documents: only the page's are
// read. A sort by n of the 2,000 documents an index on tag yields read
// and decoded all 2,000 documents; it now reads 25.
//
// The members are carried as they are stored (raw JSON), and decoded with
// the document's schema version, the way the whole document would be
// (Schema.DecodeDataOnly reads each attribute on its own), so carried
// values stay right across schema changes. A member too large to carry is
// named, so that a query testing it reads the document.
//
// Encoding: either the bare document id (read models written before
// carried values, and documents whose members do not fit; a document id
// never starts with a byte below '0'), or
//
//	carryMark, uvarint len(id), id, uvarint schema version,
//	varint created seconds, uvarint created nanoseconds,
//	uvarint number of omitted members, each as uvarint len(name), name,
//	then a JSON object of the carried members.
//
// $updatedAt is not carried: it changes on every update, and carrying it
// would rewrite every index entry of a document each time.
const (
	carryMark = 0x01
	// maxCarriedMember is the largest member value (raw JSON bytes) an
	// entry carries; larger ones are only named.
	maxCarriedMember = 48
	// maxCarry bounds the carried part of a value (members and omitted
	// names); a document with more carries nothing.
	maxCarry = 256
	// maxMembers bounds the members looked at (duplicates are found by a
	// scan of those seen).
	maxMembers = 32
)

// entryValue is the value of every index entry of the document h.
func entryValue(h docHead) []byte {
	obj, omitted, ok := smallMembers(h.data)
	if !ok {
		return []byte(h.id)
	}
	b := make([]byte, 0, 1+len(h.id)+4*binary.MaxVarintLen64+len(obj)+8*len(omitted))
	b = append(b, carryMark)
	b = binary.AppendUvarint(b, uint64(len(h.id)))
	b = append(b, h.id...)
	b = binary.AppendUvarint(b, h.version)
	b = binary.AppendVarint(b, h.created.Unix())
	b = binary.AppendUvarint(b, uint64(h.created.Nanosecond()))
	b = binary.AppendUvarint(b, uint64(len(omitted)))
	for _, name := range omitted {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	return append(b, obj...)
}

// carried is what an index entry carries of its document; data empty when
// it carries nothing (a bare id).
type carried struct {
	version uint64
	created time.Time
	omitted string // the omitted names, encoded
	data    string // JSON object of the carried members
}

// parseEntryValue splits an index entry's value into the document id and
// what it carries; ok is false for a malformed value. A string, so that
// the id and the members share one copy of the value.
func parseEntryValue(v string) (id string, c carried, ok bool) {
	if len(v) == 0 || v[0] != carryMark {
		return v, carried{}, len(v) > 0
	}
	b := v[1:]
	next := func() (uint64, bool) {
		x, n := uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return x, true
	}
	l, ok := next()
	if !ok || l > uint64(len(b)) {
		return "", carried{}, false
	}
	id, b = b[:l], b[l:]
	if c.version, ok = next(); !ok {
		return "", carried{}, false
	}
	zz, ok := next() // zig-zag, as binary.AppendVarint writes it
	if !ok {
		return "", carried{}, false
	}
	sec := int64(zz >> 1)
	if zz&1 != 0 {
		sec = ^sec
	}
	nanos, ok := next()
	if !ok || nanos >= 1e9 {
		return "", carried{}, false
	}
	c.created = time.Unix(sec, int64(nanos)).UTC()
	count, ok := next()
	if !ok {
		return "", carried{}, false
	}
	start := b
	for range count {
		l, ok := next()
		if !ok || l > uint64(len(b)) {
			return "", carried{}, false
		}
		b = b[l:]
	}
	c.omitted = start[:len(start)-len(b)]
	c.data = b
	return id, c, len(c.data) > 0
}

// uvarint is binary.Uvarint of a string.
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// covers reports whether c carries every data member names lists (system
// attributes other than $updatedAt come from the entry itself).
func (c carried) covers(names []string) bool {
	if len(c.data) == 0 {
		return false
	}
	for _, name := range names {
		if name == database.AttrUpdatedAt {
			return false
		}
	}
	b := c.omitted
	for len(b) > 0 {
		l, n := uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return false
		}
		name := b[n : n+int(l)]
		for _, want := range names {
			if want == name {
				return false
			}
		}
		b = b[n+int(l):]
	}
	return true
}

// fieldsOfCarried is fieldsOfOnly for a document known by an index entry:
// the attributes keep accepts, read from what the entry carries, and the
// system attributes keep accepts but $updatedAt. c must cover keep's
// attributes. out
// and scratch are as for Schema.DecodeDataInto.
func fieldsOfCarried(schema *database.Schema, id string, seq uint64, c carried, keep func(string) bool, out, scratch map[string]any) (map[string]any, error) {
	data, err := schema.DecodeDataInto(out, scratch, c.data, c.version, keep)
	if err != nil {
		return nil, err
	}
	// Only the system attributes the query reads: boxing them is much of
	// the cost of an entry. Less always reads $sequence, $random the $id.
	if keep(database.AttrID) || keep(query.OrderRandom) {
		data[database.AttrID] = id
	}
	if keep(database.AttrCreatedAt) {
		data[database.AttrCreatedAt] = c.created.Truncate(database.DatetimePrecision)
	}
	data[database.AttrSequence] = int64(seq)
	return data, nil
}

// fieldsOfCarriedOnly is fieldsOfCarried for the attributes names lists
// alone (and $sequence), reading each from its member in the carried
// object without decoding the others; into as for fieldsOfCarried.
func fieldsOfCarriedOnly(schema *database.Schema, id string, seq uint64, c carried, names []string, into map[string]any) (map[string]any, error) {
	if into == nil {
		into = make(map[string]any, len(names)+1)
	} else {
		clear(into)
	}
	for _, name := range names {
		if name == query.OrderRandom {
			name = database.AttrID
		}
		v, ok, err := carriedValue(schema, id, seq, c, name)
		if err != nil {
			return nil, err
		}
		if ok {
			into[name] = v
		}
	}
	into[database.AttrSequence] = int64(seq)
	return into, nil
}

// carriedValue is the value of attribute name (a data attribute, $id,
// $createdAt or $sequence) of the document an entry carries c of; ok is
// false when name is no live attribute (the document's fields leave it
// out).
func carriedValue(schema *database.Schema, id string, seq uint64, c carried, name string) (any, bool, error) {
	switch name {
	case database.AttrID:
		return id, true, nil
	case database.AttrCreatedAt:
		return c.created.Truncate(database.DatetimePrecision), true, nil
	case database.AttrSequence:
		return int64(seq), true, nil
	}
	raw, ok := member(c.data, name)
	if !ok {
		return nil, false, fmt.Errorf("carried members %q: not an object", c.data)
	}
	return schema.DecodeMember(name, raw, c.version)
}

// member returns the raw value of member name of the JSON object obj
// (which smallMembers wrote: no escaped or repeated names), "" when it
// has none; ok is false when obj is not read plainly.
func member(obj, name string) (raw string, ok bool) {
	s := jsonScan{b: obj}
	if !s.take('{') {
		return "", false
	}
	if s.take('}') {
		return "", true
	}
	for {
		start := s.i
		if !s.str() {
			return "", false
		}
		key := s.b[start+1 : s.i-1]
		if !s.take(':') {
			return "", false
		}
		vstart := s.i
		if !s.value(0) {
			return "", false
		}
		if key == name {
			return s.b[vstart:s.i], true
		}
		if s.take(',') {
			continue
		}
		return "", s.take('}')
	}
}

// smallMembers splits the top-level members of the JSON object data into
// a JSON object of those whose values are at most maxCarriedMember bytes
// (in their order in data) and the names of the others. ok is false for
// data it does not read plainly (not an object, escaped or repeated
// names, too many members) or that carries more than maxCarry bytes.
func smallMembers(data string) (obj string, omitted []string, ok bool) {
	s := jsonScan{b: data}
	s.space()
	if !s.take('{') {
		return "", nil, false
	}
	out := make([]byte, 0, 64)
	out = append(out, '{')
	var seen []string
	size := 0
	s.space()
	if s.take('}') {
		s.space()
		return "{}", nil, s.i == len(s.b)
	}
	for {
		s.space()
		nameStart := s.i
		if !s.str() {
			return "", nil, false
		}
		raw := s.b[nameStart:s.i]
		name := raw[1 : len(raw)-1]
		for i := 0; i < len(name); i++ {
			if name[i] == '\\' {
				return "", nil, false
			}
		}
		for _, o := range seen {
			if o == name {
				return "", nil, false
			}
		}
		if seen = append(seen, name); len(seen) > maxMembers {
			return "", nil, false
		}
		s.space()
		if !s.take(':') {
			return "", nil, false
		}
		s.space()
		valStart := s.i
		if !s.value(0) {
			return "", nil, false
		}
		val := s.b[valStart:s.i]
		if len(val) <= maxCarriedMember {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, raw...)
			out = append(out, ':')
			out = append(out, val...)
			size += len(raw) + len(val) + 2
		} else {
			omitted = append(omitted, name)
			size += len(name) + 1
		}
		if size > maxCarry {
			return "", nil, false
		}
		s.space()
		if s.take(',') {
			continue
		}
		if !s.take('}') {
			return "", nil, false
		}
		s.space()
		if s.i != len(s.b) {
			return "", nil, false
		}
		return string(append(out, '}')), omitted, true
	}
}

// jsonScan steps over JSON text without building anything; the stored
// data was validated when written, so it only has to find where values
// end (and refuse what it does not expect).
type jsonScan struct {
	b string
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *jsonScan) take(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str steps over a string, escapes included.
func (s *jsonScan) str() bool {
	if !s.take('"') {
		return false
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return true
		default:
			s.i++
		}
	}
	return false
}

// value steps over one value.
func (s *jsonScan) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxFastDepth {
		return false
	}
	switch c := s.b[s.i]; c {
	case '"':
		return s.str()
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.space()
		if s.take(end) {
			return true
		}
		for {
			s.space()
			if c == '{' {
				if !s.str() {
					return false
				}
				s.space()
				if !s.take(':') {
					return false
				}
				s.space()
			}
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.take(',') {
				continue
			}
			return s.take(end)
		}
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}

// maxFastDepth is the nesting jsonScan steps over; deeper data carries
// nothing.
const maxFastDepth = 64
