package database

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
)

// Document is a document of a collection. Data holds typed values (see the
// package comment), keyed by attribute.
type Document struct {
	ID          string
	Data        map[string]any
	Permissions []permission.Permission
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Sequence is the stream sequence of the document's create event.
	Sequence uint64
	// Version is the stream sequence of the document's last event.
	Version uint64
}

// Fields returns what queries evaluate against: Data plus the system
// attributes $id (string), $createdAt and $updatedAt (time.Time) and
// $sequence (int64). The map is new; the values are shared with Data.
func (d Document) Fields() map[string]any {
	f := make(map[string]any, len(d.Data)+4)
	for k, v := range d.Data {
		f[k] = v
	}
	seq := int64(math.MaxInt64)
	if d.Sequence <= math.MaxInt64 {
		seq = int64(d.Sequence)
	}
	f[AttrID] = d.ID
	f[AttrCreatedAt] = d.CreatedAt
	f[AttrUpdatedAt] = d.UpdatedAt
	f[AttrSequence] = seq
	return f
}

// live reports whether documents hold a value for attributes with status
// st: available ones and those still being processed (documents written
// now already get their values). Failed and deleting ones are gone.
func live(st Status) bool { return st == StatusAvailable || st == StatusProcessing }

// dataField is the request field naming data key k.
func dataField(k string) string { return "data." + k }

// Normalize validates document data against s and returns the document's
// complete new data: a new map with every live attribute of s (available
// or processing) holding its typed value or nil.
//
// base is nil when data is a whole document (create, full replace): absent
// attributes get their Default. For a partial update base is the
// document's current data as Read returns it, data holds only the changed
// keys, a key holding nil clears the attribute, and absent attributes keep
// their base value. Base values are trusted, not checked again: a value
// valid when it was written stays valid until it is changed.
//
// A key starting with '$' (system fields are not data), a key that is no
// live attribute, a value Coerce rejects, a required attribute left nil
// and a result larger than MaxDocumentBytes are errors. Errors are
// KindInvalid with Field "data.<key>" ("data" for the size), the first
// one in a fixed order: offending keys sorted, then attributes in schema
// order.
func (s *Schema) Normalize(data map[string]any, base map[string]any) (map[string]any, error) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "$") {
			return nil, domain.FieldError(dataField(k), "%q is a system field, not data", truncate(k))
		}
		a, ok := s.schemaAttribute(k)
		if !ok {
			return nil, domain.FieldError(dataField(k), "unknown attribute %q", truncate(k))
		}
		if !live(a.Status) {
			return nil, domain.FieldError(dataField(k), "attribute %q is not available (status %s)", k, a.Status)
		}
	}
	out := make(map[string]any, len(s.Attributes))
	for _, a := range s.Attributes {
		if !live(a.Status) {
			continue
		}
		var v any
		if raw, ok := data[a.Key]; ok {
			c, err := Coerce(a, raw)
			if err != nil {
				return nil, domain.FieldError(dataField(a.Key), "attribute %q: %s", a.Key, err.Error())
			}
			v = c
		} else if old, ok := base[a.Key]; ok {
			v = old
		} else {
			v = cloneValue(a.Default)
		}
		if v == nil && a.Required {
			return nil, domain.FieldError(dataField(a.Key), "attribute %q is required", a.Key)
		}
		out[a.Key] = v
	}
	if n := EncodedSize(out); n > MaxDocumentBytes {
		return nil, domain.FieldError("data", "a document holds at most %d bytes; this one about %d", MaxDocumentBytes, n)
	}
	return out, nil
}

// schemaAttribute returns the (non-system) attribute named key.
func (s *Schema) schemaAttribute(key string) (Attribute, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a, true
		}
	}
	return Attribute{}, false
}

// Read returns a stored document's data as the current schema sees it
// (read-time schema evolution: documents are never rewritten when the
// schema changes). storedSeq is the collection version the document was
// last written against: a sequence in the same space as the attributes'
// CreatedSeq, at or after the latest schema event its data was normalized
// against (the sequence of the document's last event when documents and
// schema events share a stream).
//
// For each live attribute a of s (available or processing) the result
// holds the stored value when the document was written after a was
// created (storedSeq >= a.CreatedSeq) and holds the key, and a.Default
// (nil when none) otherwise: an attribute added later reads as its
// default, and a value stored under a deleted attribute of the same key
// is not mistaken for one of its successor. Stored keys that are no live
// attribute are dropped, so a deleted attribute disappears from every
// document at once.
func (s *Schema) Read(stored map[string]any, storedSeq uint64) map[string]any {
	out := make(map[string]any, len(s.Attributes))
	for _, a := range s.Attributes {
		if !live(a.Status) {
			continue
		}
		if v, ok := stored[a.Key]; ok && storedSeq >= a.CreatedSeq {
			out[a.Key] = v
			continue
		}
		out[a.Key] = cloneValue(a.Default)
	}
	return out
}

// cloneValue copies an array so that a default is never shared with a
// document that may be changed.
func cloneValue(v any) any {
	if arr, ok := v.([]any); ok {
		return slices.Clone(arr)
	}
	return v
}

// MaxDocumentBytes is the largest document data, counted as stored: its
// JSON encoding (EncodeData). Normalize checks EncodedSize against it,
// before any encoding; DecideDocument checks the exact encoded size.
const MaxDocumentBytes = 256 << 10

// EncodedSize estimates the encoded size of document data in bytes: the
// sum of its keys' lengths and its values' sizes, close to their JSON
// length (strings count their bytes plus quotes, escapes not included). It
// is cheap, for rejecting oversized documents early; it is not the exact
// size of any encoding.
func EncodedSize(data map[string]any) int {
	n := 2
	for k, v := range data {
		n += len(k) + 4 + valueSize(v) // "k":v,
	}
	if len(data) > 0 {
		n-- // no comma after the last: never above the exact size at the limit
	}
	return n
}

func valueSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 4
	case bool:
		return 5
	case string:
		return len(x) + 2
	case int64:
		return len(strconv.FormatInt(x, 10))
	case int:
		return len(strconv.Itoa(x))
	case float64:
		return len(strconv.FormatFloat(x, 'g', -1, 64))
	case time.Time:
		return len(`"2006-01-02T15:04:05.000Z"`) // as ToJSON formats it
	case []any:
		n := 2
		for _, e := range x {
			n += valueSize(e) + 1
		}
		if len(x) > 0 {
			n--
		}
		return n
	case map[string]any:
		return EncodedSize(x)
	}
	return 8
}
