package database

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
)

func TestValidateAttributeAccepts(t *testing.T) {
	s := &Schema{Attributes: []Attribute{{Key: "existing", Type: TypeBoolean}}}
	tests := []struct {
		name string
		in   Attribute
		want Attribute
	}{
		{"string size 1", Attribute{Key: "a", Type: TypeString, Size: 1}, Attribute{Key: "a", Type: TypeString, Size: 1}},
		{"string max size", Attribute{Key: "a", Type: TypeString, Size: MaxStringSize}, Attribute{Key: "a", Type: TypeString, Size: MaxStringSize}},
		{"key 36 chars", Attribute{Key: "A" + strings.Repeat("b_9", 11) + "xy", Type: TypeBoolean}, Attribute{Key: "A" + strings.Repeat("b_9", 11) + "xy", Type: TypeBoolean}},
		{"integer default range", Attribute{Key: "n", Type: TypeInteger},
			Attribute{Key: "n", Type: TypeInteger, IntMin: MinSafeInteger, IntMax: MaxSafeInteger}},
		{"integer bounds kept", Attribute{Key: "n", Type: TypeInteger, IntMin: 0, IntMax: 150},
			Attribute{Key: "n", Type: TypeInteger, IntMin: 0, IntMax: 150}},
		{"integer exact safe bounds", Attribute{Key: "n", Type: TypeInteger, IntMin: MinSafeInteger, IntMax: MaxSafeInteger},
			Attribute{Key: "n", Type: TypeInteger, IntMin: MinSafeInteger, IntMax: MaxSafeInteger}},
		{"integer single value", Attribute{Key: "n", Type: TypeInteger, IntMin: 7, IntMax: 7},
			Attribute{Key: "n", Type: TypeInteger, IntMin: 7, IntMax: 7}},
		{"float default range", Attribute{Key: "f", Type: TypeFloat},
			Attribute{Key: "f", Type: TypeFloat, FloatMin: -math.MaxFloat64, FloatMax: math.MaxFloat64}},
		{"float bounds kept", Attribute{Key: "f", Type: TypeFloat, FloatMin: -1, FloatMax: 0},
			Attribute{Key: "f", Type: TypeFloat, FloatMin: -1, FloatMax: 0}},
		{"enum", Attribute{Key: "e", Type: TypeEnum, Elements: []string{"a", strings.Repeat("é", 255)}},
			Attribute{Key: "e", Type: TypeEnum, Elements: []string{"a", strings.Repeat("é", 255)}}},
		{"irrelevant fields zeroed", Attribute{Key: "m", Type: TypeEmail, Size: 10, IntMin: 1, IntMax: 2, FloatMin: 1, FloatMax: 2, Elements: []string{"x"}},
			Attribute{Key: "m", Type: TypeEmail}},
		{"url ignores size", Attribute{Key: "u", Type: TypeURL, Size: -3}, Attribute{Key: "u", Type: TypeURL}},
		{"ip", Attribute{Key: "ip", Type: TypeIP}, Attribute{Key: "ip", Type: TypeIP}},
		{"datetime default typed", Attribute{Key: "d", Type: TypeDatetime, Default: "2024-01-01T01:00:00.5+01:00"},
			Attribute{Key: "d", Type: TypeDatetime, Default: time.Date(2024, 1, 1, 0, 0, 0, 500_000_000, time.UTC)}},
		{"integer default typed", Attribute{Key: "n", Type: TypeInteger, IntMin: 0, IntMax: 10, Default: 10.0},
			Attribute{Key: "n", Type: TypeInteger, IntMin: 0, IntMax: 10, Default: int64(10)}},
		{"array default", Attribute{Key: "tags", Type: TypeString, Size: 3, Array: true, Default: []any{"a", "bcd"}},
			Attribute{Key: "tags", Type: TypeString, Size: 3, Array: true, Default: []any{"a", "bcd"}}},
		{"enum default", Attribute{Key: "e", Type: TypeEnum, Elements: []string{"x", "y"}, Default: "y"},
			Attribute{Key: "e", Type: TypeEnum, Elements: []string{"x", "y"}, Default: "y"}},
		{"required without default", Attribute{Key: "r", Type: TypeBoolean, Required: true},
			Attribute{Key: "r", Type: TypeBoolean, Required: true}},
		{"status and seq kept", Attribute{Key: "k", Type: TypeBoolean, Status: StatusProcessing, CreatedSeq: 9},
			Attribute{Key: "k", Type: TypeBoolean, Status: StatusProcessing, CreatedSeq: 9}},
	}
	for _, tt := range tests {
		a := tt.in
		if err := ValidateAttribute(s, &a); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(a, tt.want) {
			t.Errorf("%s: normalized to %+v, want %+v", tt.name, a, tt.want)
		}
	}
}

func TestValidateAttributeRejects(t *testing.T) {
	s := &Schema{Attributes: []Attribute{{Key: "existing", Type: TypeBoolean, Status: StatusDeleting}}}
	tests := []struct {
		name  string
		in    Attribute
		kind  domain.Kind
		field string
		msg   string
	}{
		{"empty key", Attribute{Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key digit first", Attribute{Key: "1a", Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key underscore first", Attribute{Key: "_a", Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key system", Attribute{Key: "$id", Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key dollar inside", Attribute{Key: "a$b", Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key dash", Attribute{Key: "a-b", Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key 37 chars", Attribute{Key: strings.Repeat("a", 37), Type: TypeBoolean}, domain.KindInvalid, "key", "must start with a letter"},
		{"key exists even while deleting", Attribute{Key: "existing", Type: TypeBoolean}, domain.KindAlreadyExists, "key", `attribute "existing" already exists`},
		{"unknown type", Attribute{Key: "a", Type: "money"}, domain.KindInvalid, "type", `unknown attribute type "money"`},
		{"empty type", Attribute{Key: "a"}, domain.KindInvalid, "type", `unknown attribute type ""`},
		{"string size 0", Attribute{Key: "a", Type: TypeString}, domain.KindInvalid, "size", "size must be between 1 and 1000000 characters; got 0"},
		{"string size negative", Attribute{Key: "a", Type: TypeString, Size: -1}, domain.KindInvalid, "size", "got -1"},
		{"string size too big", Attribute{Key: "a", Type: TypeString, Size: MaxStringSize + 1}, domain.KindInvalid, "size", "got 1000001"},
		{"integer min beyond safe", Attribute{Key: "a", Type: TypeInteger, IntMin: MinSafeInteger - 1, IntMax: 0}, domain.KindInvalid, "min", "not exact in JSON clients"},
		{"integer max beyond safe", Attribute{Key: "a", Type: TypeInteger, IntMin: 0, IntMax: MaxSafeInteger + 1}, domain.KindInvalid, "max", "must be at most 9007199254740991"},
		{"integer min above max", Attribute{Key: "a", Type: TypeInteger, IntMin: 2, IntMax: 1}, domain.KindInvalid, "min", "must not exceed max 1; got 2"},
		{"integer only min set above zero max", Attribute{Key: "a", Type: TypeInteger, IntMin: 5}, domain.KindInvalid, "min", "must not exceed max 0; got 5"},
		{"float min NaN", Attribute{Key: "a", Type: TypeFloat, FloatMin: math.NaN(), FloatMax: 1}, domain.KindInvalid, "min", "must be a finite number; got NaN"},
		{"float min -Inf", Attribute{Key: "a", Type: TypeFloat, FloatMin: math.Inf(-1), FloatMax: 1}, domain.KindInvalid, "min", "got -Inf"},
		{"float max Inf", Attribute{Key: "a", Type: TypeFloat, FloatMin: 0, FloatMax: math.Inf(1)}, domain.KindInvalid, "max", "got +Inf"},
		{"float min above max", Attribute{Key: "a", Type: TypeFloat, FloatMin: 1.5, FloatMax: 1}, domain.KindInvalid, "min", "must not exceed max 1; got 1.5"},
		{"enum no elements", Attribute{Key: "a", Type: TypeEnum}, domain.KindInvalid, "elements", "between 1 and 100 elements; got 0"},
		{"enum too many", Attribute{Key: "a", Type: TypeEnum, Elements: distinct(101)}, domain.KindInvalid, "elements", "got 101"},
		{"enum empty element", Attribute{Key: "a", Type: TypeEnum, Elements: []string{"a", ""}}, domain.KindInvalid, "elements", "element 1 must be between 1 and 255 characters; got 0"},
		{"enum long element", Attribute{Key: "a", Type: TypeEnum, Elements: []string{strings.Repeat("é", 256)}}, domain.KindInvalid, "elements", "got 256"},
		{"enum invalid utf8", Attribute{Key: "a", Type: TypeEnum, Elements: []string{"\xff"}}, domain.KindInvalid, "elements", "element 0 must be valid UTF-8"},
		{"enum duplicate", Attribute{Key: "a", Type: TypeEnum, Elements: []string{"x", "y", "x"}}, domain.KindInvalid, "elements", `element "x" appears twice`},
		{"default on required", Attribute{Key: "a", Type: TypeBoolean, Required: true, Default: true}, domain.KindInvalid, "default", "cannot set default for required attribute"},
		{"default wrong type", Attribute{Key: "a", Type: TypeBoolean, Default: "true"}, domain.KindInvalid, "default", "must be a boolean; got a string"},
		{"default out of range", Attribute{Key: "a", Type: TypeInteger, IntMin: 0, IntMax: 150, Default: 151.0}, domain.KindInvalid, "default", "must be an integer between 0 and 150; got 151"},
		{"default too long", Attribute{Key: "a", Type: TypeString, Size: 2, Default: "abc"}, domain.KindInvalid, "default", "at most 2 characters; got 3"},
		{"default not in enum", Attribute{Key: "a", Type: TypeEnum, Elements: []string{"x"}, Default: "y"}, domain.KindInvalid, "default", `must be one of "x"; got "y"`},
		{"array default scalar", Attribute{Key: "a", Type: TypeString, Size: 2, Array: true, Default: "ab"}, domain.KindInvalid, "default", "must be an array; got a string"},
		{"array default bad element", Attribute{Key: "a", Type: TypeEmail, Array: true, Default: []any{"x"}}, domain.KindInvalid, "default", "element 0: must be an email address"},
	}
	for _, tt := range tests {
		a := tt.in
		err := ValidateAttribute(s, &a)
		checkError(t, tt.name, err, tt.kind, tt.field, tt.msg)
	}
}

func TestValidateAttributeLimit(t *testing.T) {
	s := &Schema{}
	for i := range MaxAttributes {
		a := Attribute{Key: fmt.Sprintf("a%d", i), Type: TypeBoolean}
		if err := ValidateAttribute(s, &a); err != nil {
			t.Fatalf("attribute %d: %v", i, err)
		}
		s.Attributes = append(s.Attributes, a)
	}
	a := Attribute{Key: "one_more", Type: TypeBoolean}
	checkError(t, "limit", ValidateAttribute(s, &a), domain.KindResourceExhausted, "", "at most 256 attributes")
}

func distinct(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("e%d", i)
	}
	return out
}

// checkError checks that err is a *domain.Error of kind with field and a
// message containing msg.
func checkError(t *testing.T, name string, err error, kind domain.Kind, field, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v %q", name, kind, msg)
		return
	}
	de, ok := errors.AsType[*domain.Error](err)
	if !ok {
		t.Errorf("%s: error %v is no *domain.Error", name, err)
		return
	}
	if de.Kind != kind || de.Field != field || !strings.Contains(de.Message, msg) {
		t.Errorf("%s: got %v field %q message %q; want %v field %q message containing %q",
			name, de.Kind, de.Field, de.Message, kind, field, msg)
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"a": true, "Z9_": true, strings.Repeat("k", 36): true,
		"": false, "9a": false, "_a": false, "$id": false, "a.b": false, "é": false, strings.Repeat("k", 37): false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}
