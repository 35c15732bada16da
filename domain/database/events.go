package database

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// SchemaOf returns the schema a collection's stored state describes.
// Attribute.CreatedSeq holds the collection version the attribute was
// created at (eventsv1.Attribute.created_version): Read compares it with
// a document's schema_version.
func SchemaOf(c *eventsv1.Collection) (*Schema, error) {
	s := &Schema{Attributes: make([]Attribute, 0, len(c.GetAttributes())), Indexes: make([]Index, 0, len(c.GetIndexes()))}
	for _, a := range c.GetAttributes() {
		attr, err := AttributeFromEvent(a)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", c.GetId(), err)
		}
		s.Attributes = append(s.Attributes, attr)
	}
	for _, ix := range c.GetIndexes() {
		s.Indexes = append(s.Indexes, IndexFromEvent(ix))
	}
	return s, nil
}

// AttributeFromEvent converts a stored attribute.
func AttributeFromEvent(a *eventsv1.Attribute) (Attribute, error) {
	attr := Attribute{Key: a.GetKey(), Type: Type(a.GetType()), Required: a.GetRequired(), Array: a.GetArray(),
		Size: int(a.GetSize()), IntMin: a.GetIntMin(), IntMax: a.GetIntMax(), FloatMin: a.GetFloatMin(), FloatMax: a.GetFloatMax(),
		Elements: a.GetElements(), Status: Status(a.GetStatus()), CreatedSeq: a.GetCreatedVersion()}
	if attr.Type == TypeRelationship {
		attr.Relation = Relation{Collection: a.GetRelatedCollection(), Type: RelationType(a.GetRelationType()), TwoWay: a.GetTwoWay(),
			TwoWayKey: a.GetTwoWayKey(), OnDelete: OnDelete(a.GetOnDelete()), Side: Side(a.GetSide())}
	}
	if a.GetDefaultJson() != "" {
		v, err := decodeJSON(a.GetDefaultJson())
		if err != nil {
			return Attribute{}, fmt.Errorf("attribute %s: stored default: %w", a.GetKey(), err)
		}
		if attr.Default, err = Coerce(attr, v); err != nil {
			return Attribute{}, fmt.Errorf("attribute %s: stored default: %w", a.GetKey(), err)
		}
	}
	return attr, nil
}

// AttributeEvent converts an attribute for storing.
func AttributeEvent(a Attribute) (*eventsv1.Attribute, error) {
	out := &eventsv1.Attribute{Key: a.Key, Type: string(a.Type), Required: a.Required, Array: a.Array, Size: int64(a.Size),
		IntMin: a.IntMin, IntMax: a.IntMax, FloatMin: a.FloatMin, FloatMax: a.FloatMax, Elements: a.Elements,
		Status: string(a.Status), CreatedVersion: a.CreatedSeq}
	if a.Type == TypeRelationship {
		r := a.Relation
		out.RelatedCollection, out.RelationType, out.TwoWay, out.TwoWayKey, out.OnDelete, out.Side =
			r.Collection, string(r.Type), r.TwoWay, r.TwoWayKey, string(r.OnDelete), string(r.Side)
	}
	if a.Default != nil {
		b, err := json.Marshal(ToJSON(a.Default))
		if err != nil {
			return nil, fmt.Errorf("attribute %s: default: %w", a.Key, err)
		}
		out.DefaultJson = string(b)
	}
	return out, nil
}

// IndexFromEvent converts a stored index.
func IndexFromEvent(ix *eventsv1.Index) Index {
	desc := ix.GetDesc()
	if len(desc) != len(ix.GetAttributes()) {
		desc = make([]bool, len(ix.GetAttributes()))
	}
	return Index{Key: ix.GetKey(), Type: IndexType(ix.GetType()), Attributes: ix.GetAttributes(), Desc: desc,
		Status: Status(ix.GetStatus()), Error: ix.GetError(), UID: ix.GetUid(), CreatedSeq: ix.GetCreatedVersion()}
}

// IndexEvent converts an index for storing.
func IndexEvent(ix Index) *eventsv1.Index {
	return &eventsv1.Index{Key: ix.Key, Type: string(ix.Type), Attributes: ix.Attributes, Desc: ix.Desc,
		Status: string(ix.Status), Error: ix.Error, Uid: ix.UID, CreatedVersion: ix.CreatedSeq}
}

// EncodeData is the stored form of typed document data: a JSON object with
// sorted keys (deterministic), datetimes as strings, integers exact. <, >
// and & stay as they are: escaped they take 6 bytes each, and the stored
// size is what MaxDocumentBytes limits (older events hold the escaped
// form; both decode the same).
func EncodeData(data map[string]any) (string, error) {
	if b, ok := appendDataJSON(make([]byte, 0, 256), data); ok {
		return string(b), nil
	}
	return encodeDataJSON(data)
}

// encodeDataJSON is EncodeData through encoding/json: the definition
// appendDataJSON follows, and its path for what it does not know.
func encodeDataJSON(data map[string]any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ToJSON(data)); err != nil {
		return "", fmt.Errorf("encode document data: %w", err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// DecodeData reads stored data back into typed values as the current
// schema sees it (Read): version is the schema version the data was
// written against. A stored value the attribute no longer accepts reads as
// null rather than failing the read.
func (s *Schema) DecodeData(dataJSON string, version uint64) (map[string]any, error) {
	return s.DecodeDataOnly(dataJSON, version, nil)
}

// DecodeDataOnly is DecodeData for the attributes keep accepts (every one
// when keep is nil): a query that only filters and sorts decodes no more
// of a document than it tests.
func (s *Schema) DecodeDataOnly(dataJSON string, version uint64, keep func(key string) bool) (map[string]any, error) {
	return s.DecodeDataInto(nil, nil, dataJSON, version, keep)
}

// DecodeDataInto is DecodeDataOnly returning out (cleared first; a new map
// when nil), with scratch (nil for none) holding the stored members while
// it decodes: a caller decoding many documents and keeping few reuses
// both.
func (s *Schema) DecodeDataInto(out, scratch map[string]any, dataJSON string, version uint64, keep func(key string) bool) (map[string]any, error) {
	raw := map[string]any(nil)
	if dataJSON != "" {
		m, ok := map[string]any(nil), false
		if keep != nil {
			m, ok = fastJSONInto(scratch, dataJSON, keep)
		}
		if !ok {
			v, err := decodeJSON(dataJSON)
			if err != nil {
				return nil, fmt.Errorf("stored document data: %w", err)
			}
			if m, ok = v.(map[string]any); !ok {
				return nil, fmt.Errorf("stored document data is not an object")
			}
		}
		raw = m
	}
	// Read(typed values, version) in one pass: each live attribute gets
	// its stored value if it coerces and was stored at or after the
	// attribute's creation, else its default.
	if out == nil {
		out = make(map[string]any, len(s.Attributes))
	} else {
		clear(out)
	}
	for _, a := range s.Attributes {
		if !live(a.Status) || keep != nil && !keep(a.Key) {
			continue
		}
		if v := raw[a.Key]; v != nil && version >= a.CreatedSeq {
			if c, err := Coerce(a, v); err == nil {
				out[a.Key] = c
				continue
			}
		}
		out[a.Key] = cloneValue(a.Default)
	}
	return out, nil
}

// DecodeMember is DecodeDataOnly's value of the one attribute key, for
// stored data whose member key is raw (JSON text; "" when it has none).
// ok is false when key is no live attribute (DecodeDataOnly leaves it out).
func (s *Schema) DecodeMember(key, raw string, version uint64) (v any, ok bool, err error) {
	for _, a := range s.Attributes {
		if a.Key != key || !live(a.Status) {
			continue
		}
		if raw != "" && version >= a.CreatedSeq {
			// A plain integer or an unescaped string is its own decoding:
			// ranking an in-memory sort decodes one member per match.
			if v, ok := plainMember(a, raw); ok {
				return v, true, nil
			}
			x, err := decodeJSON(raw)
			if err != nil {
				return nil, false, fmt.Errorf("stored document data: %w", err)
			}
			if x != nil {
				if c, err := Coerce(a, x); err == nil {
					return c, true, nil
				}
			}
		}
		return cloneValue(a.Default), true, nil
	}
	return nil, false, nil
}

// plainMember is Coerce(a, decodeJSON(raw)) for a scalar integer or
// string attribute whose raw value is a plain JSON integer (digits, an
// optional minus) or a string without escapes; ok is false for anything
// else, and for a value Coerce refuses (the caller decides as for any).
func plainMember(a Attribute, raw string) (any, bool) {
	if a.Array {
		return nil, false
	}
	switch a.Type {
	case TypeInteger:
		digits := strings.TrimPrefix(raw, "-")
		if digits == "" || len(digits) > 18 || len(digits) > 1 && digits[0] == '0' {
			return nil, false
		}
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return nil, false
			}
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if lo, hi := intBounds(a); err != nil || n < lo || n > hi {
			return nil, false
		}
		return n, true
	case TypeString:
		if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
			return nil, false
		}
		s := raw[1 : len(raw)-1]
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == '\\' || c == '"' || c < 0x20 {
				return nil, false
			}
		}
		v, err := coerceString(a, s)
		return v, err == nil
	}
	return nil, false
}

// decodeJSON decodes one JSON value keeping numbers exact (json.Number).
func decodeJSON(b string) (any, error) {
	if v, ok := fastJSON(b); ok {
		return v, nil
	}
	return decodeJSONStd(b)
}

// decodeJSONStd is decodeJSON by encoding/json: what fastJSON must equal.
func decodeJSONStd(b string) (any, error) {
	d := json.NewDecoder(strings.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
