package database

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCoerceAccepts(t *testing.T) {
	str := Attribute{Type: TypeString, Size: 5}
	age := Attribute{Type: TypeInteger, IntMin: 0, IntMax: 150}
	seq, _ := SystemAttribute(AttrSequence)
	price := Attribute{Type: TypeFloat, FloatMin: -1.5, FloatMax: 2.5}
	enum := Attribute{Type: TypeEnum, Elements: []string{"red", "green"}}
	date := Attribute{Type: TypeDatetime}
	utc := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	tests := []struct {
		name string
		a    Attribute
		in   any
		want any
	}{
		{"nil", str, nil, nil},
		{"nil array", Attribute{Type: TypeString, Size: 1, Array: true}, nil, nil},
		{"string empty", str, "", ""},
		{"string exactly size", str, "abcde", "abcde"},
		{"string size in runes", str, "ééééé", "ééééé"},
		{"string emoji", str, "😀😀😀😀😀", "😀😀😀😀😀"},
		{"string size 0 means max", Attribute{Type: TypeString}, strings.Repeat("x", 1000), strings.Repeat("x", 1000)},
		{"integer float64", age, 42.0, int64(42)},
		{"integer min", age, 0.0, int64(0)},
		{"integer max", age, 150.0, int64(150)},
		{"integer int64", age, int64(7), int64(7)},
		{"integer int", age, 8, int64(8)},
		{"integer int32", age, int32(9), int64(9)},
		{"integer json.Number", age, json.Number("10"), int64(10)},
		{"integer default range min", Attribute{Type: TypeInteger}, float64(MinSafeInteger), int64(MinSafeInteger)},
		{"integer default range max", Attribute{Type: TypeInteger}, float64(MaxSafeInteger), int64(MaxSafeInteger)},
		{"integer negative zero", age, math.Copysign(0, -1), int64(0)},
		{"system sequence max", seq, int64(math.MaxInt64), int64(math.MaxInt64)},
		{"float", price, 1.25, 1.25},
		{"float min", price, -1.5, -1.5},
		{"float max", price, 2.5, 2.5},
		{"float from int", price, 2, 2.0},
		{"float from int64", price, int64(-1), -1.0},
		{"float from float32", price, float32(0.5), 0.5},
		{"float json.Number", price, json.Number("1.5e0"), 1.5},
		{"float default range", Attribute{Type: TypeFloat}, math.MaxFloat64, math.MaxFloat64},
		{"boolean true", Attribute{Type: TypeBoolean}, true, true},
		{"boolean false", Attribute{Type: TypeBoolean}, false, false},
		{"datetime Z", date, "2024-01-31T12:00:00Z", utc("2024-01-31T12:00:00Z")},
		{"datetime millis", date, "2024-01-31T12:00:00.123Z", utc("2024-01-31T12:00:00.123Z")},
		{"datetime truncated", date, "2024-01-31T12:00:00.123999999Z", utc("2024-01-31T12:00:00.123Z")},
		{"datetime offset to UTC", date, "2024-01-31T12:00:00+02:00", utc("2024-01-31T10:00:00Z")},
		{"datetime negative offset crosses day", date, "2024-12-31T23:30:00.5-01:00", utc("2025-01-01T00:30:00.5Z")},
		{"datetime year 1", date, "0001-01-01T00:00:00Z", utc("0001-01-01T00:00:00Z")},
		{"datetime year 9999", date, "9999-12-31T23:59:59.999Z", utc("9999-12-31T23:59:59.999Z")},
		{"datetime time.Time", date, time.Date(2024, 1, 2, 3, 4, 5, 6_700_000, time.FixedZone("X", 3600)), utc("2024-01-02T02:04:05.006Z")},
		{"email", Attribute{Type: TypeEmail}, "ada@example.com", "ada@example.com"},
		{"email plus and dots", Attribute{Type: TypeEmail}, "a.b+c@mail.example.co.uk", "a.b+c@mail.example.co.uk"},
		{"email size ignored", Attribute{Type: TypeEmail, Size: 1}, "ada@example.com", "ada@example.com"},
		{"email max length", Attribute{Type: TypeEmail}, strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com"},
		{"url http", Attribute{Type: TypeURL}, "http://example.com", "http://example.com"},
		{"url https path query", Attribute{Type: TypeURL}, "https://example.com:8443/a/b?c=d#e", "https://example.com:8443/a/b?c=d#e"},
		{"url upper scheme", Attribute{Type: TypeURL}, "HTTPS://example.com/", "HTTPS://example.com/"},
		{"url ipv6 host", Attribute{Type: TypeURL}, "http://[::1]:8080/", "http://[::1]:8080/"},
		{"ip v4", Attribute{Type: TypeIP}, "192.168.0.1", "192.168.0.1"},
		{"ip v6", Attribute{Type: TypeIP}, "2001:db8::1", "2001:db8::1"},
		{"ip v6 mapped v4", Attribute{Type: TypeIP}, "::ffff:10.0.0.1", "::ffff:10.0.0.1"},
		{"enum", enum, "green", "green"},
		{"array", Attribute{Type: TypeInteger, Array: true}, []any{1.0, int64(2)}, []any{int64(1), int64(2)}},
		{"array empty", Attribute{Type: TypeString, Size: 3, Array: true}, []any{}, []any{}},
		{"array max elements", Attribute{Type: TypeBoolean, Array: true}, make1000(true), make1000(true)},
		{"array datetimes", Attribute{Type: TypeDatetime, Array: true}, []any{"2024-01-01T01:00:00+01:00"}, []any{utc("2024-01-01T00:00:00Z")}},
	}
	for _, tt := range tests {
		got, err := Coerce(tt.a, tt.in)
		if err != nil {
			t.Errorf("%s: Coerce(%v): %v", tt.name, tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Coerce(%v) = %#v, want %#v", tt.name, tt.in, got, tt.want)
		}
	}
}

func make1000(v any) []any {
	out := make([]any, MaxArrayElements)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestCoerceRejects(t *testing.T) {
	str := Attribute{Type: TypeString, Size: 5}
	age := Attribute{Type: TypeInteger, IntMin: 0, IntMax: 150}
	seq, _ := SystemAttribute(AttrSequence)
	price := Attribute{Type: TypeFloat, FloatMin: -1.5, FloatMax: 2.5}
	enum := Attribute{Type: TypeEnum, Elements: []string{"red", "green"}}
	many := make([]string, 12)
	for i := range many {
		many[i] = string(rune('a' + i))
	}
	date := Attribute{Type: TypeDatetime}
	email := Attribute{Type: TypeEmail}
	url := Attribute{Type: TypeURL}
	ip := Attribute{Type: TypeIP}
	tests := []struct {
		name string
		a    Attribute
		in   any
		want string
	}{
		{"string too long", str, "abcdef", "must be a string of at most 5 characters; got 6"},
		{"string runes too long", str, "éééééé", "must be a string of at most 5 characters; got 6"},
		{"string number", str, 1.0, "must be a string of at most 5 characters; got a number"},
		{"string invalid utf8", str, "a\xffb", "must be valid UTF-8"},
		{"string array for scalar", str, []any{"a"}, "must be a string of at most 5 characters; got an array"},
		{"string object", str, map[string]any{}, "got an object"},
		{"string datetime", str, time.Now(), "got a datetime"},
		{"integer above max", age, 151.0, "must be an integer between 0 and 150; got 151"},
		{"integer below min", age, -1.0, "must be an integer between 0 and 150; got -1"},
		{"integer int64 above", age, int64(1000), "must be an integer between 0 and 150; got 1000"},
		{"integer fraction", age, 1.5, "must be an integer; got 1.5"},
		{"integer NaN", age, math.NaN(), "must be an integer; got NaN"},
		{"integer Inf", age, math.Inf(1), "must be an integer; got +Inf"},
		{"integer huge float", seq, 1e19, "must be an integer between 0 and 9223372036854775807; got 1e+19"},
		{"integer 2^63", seq, float64(1 << 63), "got 9.223372036854776e+18"},
		{"integer beyond safe", Attribute{Type: TypeInteger}, float64(MaxSafeInteger + 1), "must be an integer between -9007199254740991 and 9007199254740991; got 9007199254740992"},
		{"integer string", age, "5", "must be an integer; got a string"},
		{"integer bool", age, true, "must be an integer; got a boolean"},
		{"integer bad json.Number", age, json.Number("1.5"), "must be an integer between 0 and 150; got 1.5"},
		{"float above", price, 2.51, "must be a number between -1.5 and 2.5; got 2.51"},
		{"float below", price, -1.51, "must be a number between -1.5 and 2.5; got -1.51"},
		{"float NaN", price, math.NaN(), "must be a finite number; got NaN"},
		{"float -Inf", Attribute{Type: TypeFloat}, math.Inf(-1), "must be a finite number; got -Inf"},
		{"float string", price, "1", "must be a number; got a string"},
		{"float bad json.Number", price, json.Number("x"), "must be a finite number; got x"},
		{"boolean string", Attribute{Type: TypeBoolean}, "true", "must be a boolean; got a string"},
		{"boolean number", Attribute{Type: TypeBoolean}, 1.0, "must be a boolean; got a number"},
		{"datetime no zone", date, "2024-01-31T12:00:00", "must be an RFC 3339 datetime"},
		{"datetime date only", date, "2024-01-31", "must be an RFC 3339 datetime"},
		{"datetime space", date, "2024-01-31 12:00:00Z", "must be an RFC 3339 datetime"},
		{"datetime month 13", date, "2024-13-01T00:00:00Z", "must be an RFC 3339 datetime"},
		{"datetime number", date, 1.0, "must be an RFC 3339 datetime string; got a number"},
		{"datetime year 0 after UTC", date, "0001-01-01T00:30:00+01:00", "must be a datetime between years 0001 and 9999 in UTC; got year 0"},
		{"datetime year 10000 after UTC", date, "9999-12-31T23:30:00-01:00", "got year 10000"},
		{"datetime time.Time year 10000", date, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "got year 10000"},
		{"datetime unknown value type", date, struct{}{}, "got a value of type struct {}"},
		{"email display name", email, "Ada <ada@example.com>", "must be an email address such as name@example.com; got \"Ada <ada@example.com>\""},
		{"email angle brackets", email, "<ada@example.com>", "must be an email address"},
		{"email no at", email, "ada.example.com", "must be an email address"},
		{"email spaces", email, " ada@example.com", "must be an email address"},
		{"email two", email, "a@b.c, d@e.f", "must be an email address"},
		{"email empty", email, "", "must be an email address"},
		{"email too long", email, strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", "must be an email address of at most 254 characters; got 255"},
		{"email number", email, 1.0, "must be an email address; got a number"},
		{"url javascript", url, "javascript:alert(1)", "must be an absolute http or https URL; got \"javascript:alert(1)\""},
		{"url javascript slashes", url, "javascript://example.com/%0Aalert(1)", "must be an absolute http or https URL"},
		{"url ftp", url, "ftp://example.com/", "must be an absolute http or https URL"},
		{"url relative", url, "/a/b", "must be an absolute http or https URL"},
		{"url no host", url, "http:///a", "must be an absolute http or https URL"},
		{"url opaque", url, "http:example.com", "must be an absolute http or https URL"},
		{"url space", url, "http://example.com/a b", "must be an absolute http or https URL"},
		{"url newline", url, "http://example.com/\n", "must be an absolute http or https URL"},
		{"url unparsable", url, "http://[::1", "must be an absolute http or https URL"},
		{"url too long", url, "https://example.com/" + strings.Repeat("a", 2029), "must be a URL of at most 2048 characters; got 2049"},
		{"url bool", url, true, "must be a URL; got a boolean"},
		{"ip bad", ip, "256.0.0.1", "must be an IPv4 or IPv6 address without zone; got \"256.0.0.1\""},
		{"ip cidr", ip, "10.0.0.0/8", "must be an IPv4 or IPv6 address"},
		{"ip zone", ip, "fe80::1%eth0", "must be an IPv4 or IPv6 address without zone"},
		{"ip host name", ip, "localhost", "must be an IPv4 or IPv6 address"},
		{"ip number", ip, 1.0, "must be an IPv4 or IPv6 address; got a number"},
		{"enum other", enum, "blue", "must be one of \"red\", \"green\"; got \"blue\""},
		{"enum case", enum, "Red", "must be one of"},
		{"enum number", enum, 1.0, "must be one of \"red\", \"green\"; got a number"},
		{"enum long list", Attribute{Type: TypeEnum, Elements: many}, "z", "\"j\", … (2 more); got \"z\""},
		{"unknown type", Attribute{Type: "money"}, 1.0, "has unknown type \"money\""},
		{"array scalar", Attribute{Type: TypeString, Size: 5, Array: true}, "a", "must be an array; got a string"},
		{"array too many", Attribute{Type: TypeBoolean, Array: true}, append(make1000(true), true), "must be an array of at most 1000 elements; got 1001"},
		{"array null element", Attribute{Type: TypeString, Size: 5, Array: true}, []any{"a", nil}, "element 1: must not be null"},
		{"array bad element", Attribute{Type: TypeInteger, IntMin: 0, IntMax: 150, Array: true}, []any{1.0, 2.0, 151.0}, "element 2: must be an integer between 0 and 150; got 151"},
		{"array nested", Attribute{Type: TypeString, Size: 5, Array: true}, []any{[]any{"a"}}, "element 0: must be a string of at most 5 characters; got an array"},
	}
	for _, tt := range tests {
		got, err := Coerce(tt.a, tt.in)
		if err == nil {
			t.Errorf("%s: Coerce(%v) = %#v, want error containing %q", tt.name, tt.in, got, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Coerce(%v) error %q, want it to contain %q", tt.name, tt.in, err, tt.want)
		}
	}
}

func TestCoerceMessageTruncatesLongValues(t *testing.T) {
	for _, tt := range []struct {
		in    string
		runes int
	}{
		{strings.Repeat("é", 100), 32},
		{"a" + strings.Repeat("é", 100), 31}, // byte 64 is inside a rune
	} {
		_, err := Coerce(Attribute{Type: TypeIP}, tt.in)
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		if !strings.HasSuffix(msg, "…\"") || strings.Count(msg, "é") != tt.runes || !strings.Contains(msg, "é…") {
			t.Errorf("message not truncated at a rune boundary: %q", msg)
		}
	}
}

func TestToJSON(t *testing.T) {
	tm := time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("X", 3600))
	in := map[string]any{
		"t":   tm,
		"n":   int64(1 << 60),
		"f":   1.5,
		"s":   "x",
		"b":   true,
		"nil": nil,
		"arr": []any{tm, int64(2)},
	}
	want := map[string]any{
		"t":   "2024-01-02T02:04:05.006Z",
		"n":   int64(1 << 60),
		"f":   1.5,
		"s":   "x",
		"b":   true,
		"nil": nil,
		"arr": []any{"2024-01-02T02:04:05.006Z", int64(2)},
	}
	if got := ToJSON(in); !reflect.DeepEqual(got, want) {
		t.Errorf("ToJSON = %#v, want %#v", got, want)
	}
	if _, ok := in["t"].(time.Time); !ok {
		t.Error("ToJSON changed its input")
	}
}
