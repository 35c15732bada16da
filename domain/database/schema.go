// Package database holds the pure rules of Cairn's document database:
// collection schemas (attributes, indexes), document validation against a
// schema, and the deciders of databases, collections and documents.
//
// Values inside the domain are typed Go values, one representation per
// attribute type, so that validation, query evaluation and index key
// encoding all agree:
//
//	string, email, url, ip, enum → string
//	integer                      → int64
//	float                        → float64
//	boolean                      → bool
//	datetime                     → time.Time (UTC, millisecond precision)
//	point                        → []any{longitude, latitude} of float64
//	array attribute              → []any of the element representation
//	null / absent                → nil
package database

import (
	"math"
	"time"
)

// Type is an attribute's type. Stored in events: only ever add.
type Type string

// The attribute types (Appwrite's set).
const (
	TypeString   Type = "string"
	TypeInteger  Type = "integer"
	TypeFloat    Type = "float"
	TypeBoolean  Type = "boolean"
	TypeDatetime Type = "datetime"
	TypeEmail    Type = "email"
	TypeURL      Type = "url"
	TypeIP       Type = "ip"
	TypeEnum     Type = "enum"
	// TypeRelationship holds ids of documents of a related collection
	// (Attribute.Relation): a string, or an array of strings when this
	// side relates to many.
	TypeRelationship Type = "relationship"
	// TypePoint is a geographic point, Appwrite's point column:
	// [longitude, latitude] in degrees (WGS 84).
	TypePoint Type = "point"
)

// Status is the state of an attribute or index that may need work on
// existing documents before it is usable.
type Status string

// Statuses, as Appwrite names them.
const (
	StatusProcessing Status = "processing"
	StatusAvailable  Status = "available"
	StatusFailed     Status = "failed"
	StatusDeleting   Status = "deleting"
)

// IndexType is an index's kind.
type IndexType string

// Index kinds.
const (
	IndexKey      IndexType = "key"
	IndexUnique   IndexType = "unique"
	IndexFulltext IndexType = "fulltext"
)

// Integers are exact in JSON clients (JavaScript numbers) only within
// ±2^53-1, so that is the default integer range.
const (
	MaxSafeInteger = 1<<53 - 1
	MinSafeInteger = -MaxSafeInteger
)

// Attribute is one field of a collection's schema.
type Attribute struct {
	Key      string
	Type     Type
	Required bool
	Array    bool
	// Size is the maximum length in characters of a string (TypeString).
	Size int
	// IntMin/IntMax bound integers; FloatMin/FloatMax bound floats.
	IntMin, IntMax     int64
	FloatMin, FloatMax float64
	// Elements are the allowed values of an enum.
	Elements []string
	// Default is the value (typed as above) an absent field gets; nil for
	// none. Never set on a required attribute (Appwrite's rule).
	Default any
	// Relation describes a relationship attribute (TypeRelationship).
	Relation Relation
	Status   Status
	// CreatedSeq is the stream sequence of the event that created the
	// attribute: a document stored against an older schema holds no valid
	// value for it (it may hold one of a deleted attribute with the same
	// key), so it reads as the default.
	CreatedSeq uint64
}

// Index is a secondary index of a collection.
type Index struct {
	Key        string
	Type       IndexType
	Attributes []string
	// Desc[i] orders Attributes[i] descending; same length as Attributes.
	Desc   []bool
	Status Status
	// Error explains a failed status (a unique index existing documents
	// violate names the conflicting value).
	Error string
	// UID is unique forever (a ULID): unique-value claims are namespaced by
	// it, so an index deleted and created again never sees old claims.
	UID        string
	CreatedSeq uint64
}

// System attributes every document has; they can be queried and ordered
// by like attributes.
const (
	AttrID        = "$id"
	AttrCreatedAt = "$createdAt"
	AttrUpdatedAt = "$updatedAt"
	AttrSequence  = "$sequence"
)

var systemAttributes = map[string]Attribute{
	AttrID:        {Key: AttrID, Type: TypeString, Required: true, Size: 36, Status: StatusAvailable},
	AttrCreatedAt: {Key: AttrCreatedAt, Type: TypeDatetime, Required: true, Status: StatusAvailable},
	AttrUpdatedAt: {Key: AttrUpdatedAt, Type: TypeDatetime, Required: true, Status: StatusAvailable},
	AttrSequence:  {Key: AttrSequence, Type: TypeInteger, Required: true, IntMin: 0, IntMax: math.MaxInt64, Status: StatusAvailable},
}

// SystemAttribute returns the system attribute named key.
func SystemAttribute(key string) (Attribute, bool) {
	a, ok := systemAttributes[key]
	return a, ok
}

// Schema is what queries and validation need of a collection.
type Schema struct {
	Attributes []Attribute
	Indexes    []Index
}

// Attribute returns the attribute (or system attribute) named key.
func (s *Schema) Attribute(key string) (Attribute, bool) {
	if a, ok := systemAttributes[key]; ok {
		return a, true
	}
	for _, a := range s.Attributes {
		if a.Key == key {
			return a, true
		}
	}
	return Attribute{}, false
}

// Index returns the index named key.
func (s *Schema) Index(key string) (Index, bool) {
	for _, ix := range s.Indexes {
		if ix.Key == key {
			return ix, true
		}
	}
	return Index{}, false
}

// DatetimePrecision is the precision datetimes are stored with.
const DatetimePrecision = time.Millisecond

// DatetimeLayout formats datetimes the way Appwrite does.
const DatetimeLayout = "2006-01-02T15:04:05.000Z07:00"
