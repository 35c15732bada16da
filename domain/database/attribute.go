package database

import (
	"math"
	"regexp"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/domain"
)

// Limits of a collection's schema.
const (
	// MaxAttributes is the most attributes a collection has.
	MaxAttributes = 256
	// MaxStringSize is the largest Size of a string attribute (Appwrite's).
	// A document as a whole must still fit in MaxDocumentBytes.
	MaxStringSize = 1_000_000
	// MaxEnumElements is the most elements an enum has.
	MaxEnumElements = 100
	// MaxEnumElementLength is the longest enum element, in characters.
	MaxEnumElementLength = 255
)

// keyPattern is what attribute and index keys look like. It has no '$', so
// the system attribute names ($id, …) are reserved.
var keyPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,35}$`)

// ValidKey reports whether key is a well-formed attribute or index key.
func ValidKey(key string) bool { return keyPattern.MatchString(key) }

const keyRule = "must start with a letter and hold at most 36 letters, digits and underscores"

// ValidateAttribute checks attribute a, about to be created in schema s,
// and normalizes it in place:
//   - integer bounds both zero become the safe range
//     [MinSafeInteger, MaxSafeInteger]; float bounds both zero become
//     [-math.MaxFloat64, math.MaxFloat64];
//   - fields that do not apply to a's type (Size but for strings, integer
//     and float bounds, Elements but for enums) are zeroed, so stored
//     attributes are canonical;
//   - Default becomes its typed value (an array for array attributes).
//
// Status and CreatedSeq are left as given. It returns KindAlreadyExists
// when s has an attribute named a.Key, KindResourceExhausted when s has
// MaxAttributes attributes, and KindInvalid naming the request field
// (key, type, size, min, max, elements, default) otherwise.
func ValidateAttribute(s *Schema, a *Attribute) error {
	if !keyPattern.MatchString(a.Key) {
		return domain.FieldError("key", "attribute key %q %s", truncate(a.Key), keyRule)
	}
	for _, b := range s.Attributes {
		if b.Key == a.Key {
			return &domain.Error{Kind: domain.KindAlreadyExists, Field: "key", Message: "attribute \"" + a.Key + "\" already exists"}
		}
	}
	if len(s.Attributes) >= MaxAttributes {
		return domain.Errorf(domain.KindResourceExhausted, "a collection has at most %d attributes", MaxAttributes)
	}
	if a.Type != TypeString {
		a.Size = 0
	}
	if a.Type != TypeInteger {
		a.IntMin, a.IntMax = 0, 0
	}
	if a.Type != TypeFloat {
		a.FloatMin, a.FloatMax = 0, 0
	}
	if a.Type != TypeEnum {
		a.Elements = nil
	}
	if a.Type != TypeRelationship {
		a.Relation = Relation{}
	}
	switch a.Type {
	case TypeString:
		if a.Size < 1 || a.Size > MaxStringSize {
			return domain.FieldError("size", "a string attribute's size must be between 1 and %d characters; got %d", MaxStringSize, a.Size)
		}
	case TypeInteger:
		if a.IntMin == 0 && a.IntMax == 0 {
			a.IntMin, a.IntMax = MinSafeInteger, MaxSafeInteger
		}
		// JSON clients (JavaScript) hold numbers as float64, exact only
		// within ±2^53-1: a larger bound could not be sent back intact.
		if a.IntMin < MinSafeInteger {
			return domain.FieldError("min", "must be at least %d (integers beyond are not exact in JSON clients); got %d", int64(MinSafeInteger), a.IntMin)
		}
		if a.IntMax > MaxSafeInteger {
			return domain.FieldError("max", "must be at most %d (integers beyond are not exact in JSON clients); got %d", int64(MaxSafeInteger), a.IntMax)
		}
		if a.IntMin > a.IntMax {
			return domain.FieldError("min", "must not exceed max %d; got %d", a.IntMax, a.IntMin)
		}
	case TypeFloat:
		if math.IsNaN(a.FloatMin) || math.IsInf(a.FloatMin, 0) {
			return domain.FieldError("min", "must be a finite number; got %s", formatFloat(a.FloatMin))
		}
		if math.IsNaN(a.FloatMax) || math.IsInf(a.FloatMax, 0) {
			return domain.FieldError("max", "must be a finite number; got %s", formatFloat(a.FloatMax))
		}
		if a.FloatMin == 0 && a.FloatMax == 0 {
			a.FloatMin, a.FloatMax = -math.MaxFloat64, math.MaxFloat64
		}
		if a.FloatMin > a.FloatMax {
			return domain.FieldError("min", "must not exceed max %s; got %s", formatFloat(a.FloatMax), formatFloat(a.FloatMin))
		}
	case TypeEnum:
		if err := validateElements(a.Elements); err != nil {
			return err
		}
	case TypeRelationship:
		if err := validateRelation(a); err != nil {
			return err
		}
	case TypeBoolean, TypeDatetime, TypeEmail, TypeURL, TypeIP:
	case TypePoint:
		// A point is already a pair; arrays of pairs are Appwrite's line,
		// which Cairn does not have.
		if a.Array {
			return domain.FieldError("array", "a point attribute cannot be an array")
		}
	default:
		return domain.FieldError("type", "unknown attribute type %q", truncate(string(a.Type)))
	}
	if a.Default != nil {
		if a.Required {
			return domain.FieldError("default", "cannot set default for required attribute")
		}
		d, err := Coerce(*a, a.Default)
		if err != nil {
			return domain.FieldError("default", "%s", err.Error())
		}
		a.Default = d
	}
	return nil
}

func validateElements(elements []string) error {
	if len(elements) < 1 || len(elements) > MaxEnumElements {
		return domain.FieldError("elements", "an enum has between 1 and %d elements; got %d", MaxEnumElements, len(elements))
	}
	seen := make(map[string]bool, len(elements))
	for i, e := range elements {
		if !utf8.ValidString(e) {
			return domain.FieldError("elements", "element %d must be valid UTF-8", i)
		}
		if n := utf8.RuneCountInString(e); n < 1 || n > MaxEnumElementLength {
			return domain.FieldError("elements", "element %d must be between 1 and %d characters; got %d", i, MaxEnumElementLength, n)
		}
		if seen[e] {
			return domain.FieldError("elements", "element %q appears twice", truncate(e))
		}
		seen[e] = true
	}
	return nil
}
