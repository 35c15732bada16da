package database

import (
	"strings"

	"github.com/cairn-dev/cairn/domain"
)

// Limits of indexes.
const (
	// MaxIndexes is the most indexes a collection has.
	MaxIndexes = 64
	// MaxIndexAttributes is the most attributes one index covers.
	MaxIndexAttributes = 8
)

// ValidateIndex checks index ix, about to be created in schema s, and
// normalizes it in place: a nil Desc becomes all ascending. Its attributes
// must exist and be available; system attributes ($id, $createdAt, …) may
// be used by key and unique indexes; array attributes cannot be indexed; a
// fulltext index covers exactly one string attribute. Status, UID, Error
// and CreatedSeq are left as given.
//
// It returns KindAlreadyExists when s has an index named ix.Key,
// KindResourceExhausted when s has MaxIndexes indexes, and KindInvalid
// naming the request field (key, type, attributes, orders) otherwise.
func ValidateIndex(s *Schema, ix *Index) error {
	if !keyPattern.MatchString(ix.Key) {
		return domain.FieldError("key", "index key %q %s", truncate(ix.Key), keyRule)
	}
	if _, ok := s.Index(ix.Key); ok {
		return &domain.Error{Kind: domain.KindAlreadyExists, Field: "key", Message: "index \"" + ix.Key + "\" already exists"}
	}
	if len(s.Indexes) >= MaxIndexes {
		return domain.Errorf(domain.KindResourceExhausted, "a collection has at most %d indexes", MaxIndexes)
	}
	switch ix.Type {
	case IndexKey, IndexUnique:
	case IndexFulltext:
		if len(ix.Attributes) != 1 {
			return domain.FieldError("attributes", "a fulltext index covers exactly one attribute; got %d", len(ix.Attributes))
		}
	default:
		return domain.FieldError("type", "unknown index type %q (want key, unique or fulltext)", truncate(string(ix.Type)))
	}
	if len(ix.Attributes) < 1 || len(ix.Attributes) > MaxIndexAttributes {
		return domain.FieldError("attributes", "an index covers between 1 and %d attributes; got %d", MaxIndexAttributes, len(ix.Attributes))
	}
	seen := make(map[string]bool, len(ix.Attributes))
	for _, key := range ix.Attributes {
		a, ok := s.Attribute(key)
		if !ok {
			return domain.FieldError("attributes", "unknown attribute %q", truncate(key))
		}
		if seen[key] {
			return domain.FieldError("attributes", "attribute %q appears twice", key)
		}
		seen[key] = true
		if strings.HasPrefix(key, "$") && ix.Type == IndexFulltext {
			return domain.FieldError("attributes", "a fulltext index cannot cover system attribute %q", key)
		}
		if a.Status != StatusAvailable {
			return domain.FieldError("attributes", "attribute %q is not available (status %s)", key, a.Status)
		}
		if a.Array {
			return domain.FieldError("attributes", "attribute %q is an array; arrays cannot be indexed", key)
		}
		if a.Type == TypePoint && (ix.Type != IndexKey || len(ix.Attributes) != 1) {
			return domain.FieldError("attributes", "a point attribute is indexed alone, by a key index (a geo index); %q cannot be part of a %s index of %d attributes", key, ix.Type, len(ix.Attributes))
		}
		if ix.Type == IndexFulltext && a.Type != TypeString {
			return domain.FieldError("attributes", "a fulltext index covers a string attribute; %q is %s", key, a.Type)
		}
	}
	if ix.Desc == nil {
		ix.Desc = make([]bool, len(ix.Attributes))
	} else if len(ix.Desc) != len(ix.Attributes) {
		return domain.FieldError("orders", "one order per attribute: %d attributes, %d orders", len(ix.Attributes), len(ix.Desc))
	}
	if a, ok := s.Attribute(ix.Attributes[0]); ok && a.Type == TypePoint && ix.Desc[0] {
		return domain.FieldError("orders", "a geo index (on point %q) has no order; points cannot be sorted", a.Key)
	}
	return nil
}
