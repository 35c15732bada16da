package query

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// byteReader turns fuzz bytes into choices deterministically; once the
// bytes run out every choice is 0.
type byteReader struct{ b []byte }

func (r *byteReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) intn(n int) int { return int(r.byte()) % n }

func (r *byteReader) uint64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

func (r *byteReader) string() string {
	words := []string{"", "a", "Alice", "hello world", "red", "x.y@z.io", "2026-01-02T03:04:05Z",
		"2026-01-02T03:04:05.123+01:00", "2026-13-45", "  ", "ü東京", "\xff\xfe"}
	if r.intn(4) == 0 { // raw bytes
		n := r.intn(12)
		b := make([]byte, n)
		for i := range b {
			b[i] = r.byte()
		}
		return string(b)
	}
	return words[r.intn(len(words))]
}

var fuzzAttributes = []string{"name", "age", "score", "active", "born", "mail", "site", "addr", "color",
	"bio", "title", "note", "tags", "nums", "days", "pending", "broken",
	"$id", "$createdAt", "$updatedAt", "$sequence", "", "junk", "$junk"}

func (r *byteReader) value() any {
	switch r.intn(12) {
	case 0:
		return nil
	case 1:
		return math.Float64frombits(r.uint64()) // anything, NaN and Inf included
	case 2:
		return float64(int8(r.byte())) // integral
	case 3:
		return float64(int8(r.byte())) + 0.5
	case 4, 5:
		return r.string()
	case 6:
		return r.intn(2) == 0
	case 7:
		return int64(r.uint64())
	case 8:
		return int(int8(r.byte()))
	case 9:
		return time.Unix(int64(int32(r.uint64())), int64(r.intn(250))*4000321).In(time.FixedZone("z", 3600*(r.intn(5)-2)))
	case 10:
		return []int{1}
	default:
		return float64(r.uint64() >> 10) // large integral
	}
}

func (r *byteReader) filter(depth int) Filter {
	var f Filter
	k := r.intn(len(Ops) + 2)
	switch {
	case k < len(Ops):
		f.Op = Ops[k]
	case k == len(Ops):
		f.Op = "bogus"
	}
	if f.Op == OpAnd || f.Op == OpOr {
		if depth < 6 {
			n := r.intn(4)
			for range n {
				f.Filters = append(f.Filters, r.filter(depth+1))
			}
		}
		if r.intn(8) == 0 {
			f.Attribute = "age"
		}
		return f
	}
	f.Attribute = fuzzAttributes[r.intn(len(fuzzAttributes))]
	n := r.intn(5)
	if r.intn(16) == 0 {
		n = 101 + r.intn(3)
	}
	for range n {
		f.Values = append(f.Values, r.value())
	}
	if r.intn(16) == 0 {
		f.Filters = []Filter{{Op: OpIsNull, Attribute: "age"}}
	}
	return f
}

func (r *byteReader) query() Query {
	nums := []int{0, 0, 1, 25, 100, 101, -1, 5000, 5001}
	q := Query{Limit: nums[r.intn(len(nums))], Offset: nums[r.intn(len(nums))]}
	switch r.intn(4) {
	case 1:
		q.CursorAfter = "d1"
	case 2:
		q.CursorBefore = "d2"
	case 3:
		q.CursorAfter, q.CursorBefore = "d1", "d2"
	}
	n := r.intn(6)
	if r.intn(32) == 0 {
		n = 101
	}
	for range n {
		q.Filters = append(q.Filters, r.filter(1))
	}
	for range r.intn(3) {
		q.Select = append(q.Select, fuzzAttributes[r.intn(len(fuzzAttributes))])
	}
	for range r.intn(3) {
		q.Orders = append(q.Orders, Order{Attribute: fuzzAttributes[r.intn(len(fuzzAttributes))], Desc: r.intn(2) == 0})
	}
	return q
}

// doc builds a document of the test schema, mostly well typed, with nils
// and (rarely) values of the wrong type.
func (r *byteReader) doc(seq int64) map[string]any {
	s := testSchema()
	d := map[string]any{
		"$id": []string{"d1", "d2", "d3"}[seq%3], "$sequence": seq,
		"$createdAt": t0.Add(time.Duration(r.intn(100)) * time.Millisecond), "$updatedAt": t1,
	}
	for _, a := range s.Attributes {
		switch r.intn(8) {
		case 0:
			continue // absent
		case 1:
			d[a.Key] = r.value() // possibly wrong type
			continue
		}
		one := func() any {
			switch a.Type {
			case database.TypeInteger:
				return int64(int8(r.byte()))
			case database.TypeFloat:
				return float64(int8(r.byte())) / 4
			case database.TypeBoolean:
				return r.intn(2) == 0
			case database.TypeDatetime:
				return t0.Add(time.Duration(int8(r.byte())) * time.Hour)
			}
			return r.string()
		}
		if a.Array {
			var arr []any
			for range r.intn(4) {
				arr = append(arr, one())
			}
			d[a.Key] = arr
		} else {
			d[a.Key] = one()
		}
	}
	return d
}

// checkTyped reports whether the values of an accepted leaf filter have the
// representation of its attribute.
func checkTyped(t *testing.T, f *Filter, s *database.Schema) {
	t.Helper()
	if f.Op == OpAnd || f.Op == OpOr {
		for i := range f.Filters {
			checkTyped(t, &f.Filters[i], s)
		}
		return
	}
	a, _ := s.Attribute(f.Attribute)
	for _, v := range f.Values {
		ok := false
		switch {
		case f.Op == OpSearch || f.Op == OpNotSearch || stringLike(a.Type):
			_, ok = v.(string)
		case a.Type == database.TypeInteger:
			_, ok = v.(int64)
		case a.Type == database.TypeFloat:
			x, isFloat := v.(float64)
			ok = isFloat && !math.IsNaN(x) && !math.IsInf(x, 0)
		case a.Type == database.TypeBoolean:
			_, ok = v.(bool)
		case a.Type == database.TypeDatetime:
			x, isTime := v.(time.Time)
			ok = isTime && x.Location() == time.UTC && x.Equal(x.Truncate(database.DatetimePrecision))
		}
		if !ok {
			t.Fatalf("accepted %s on %q (%s) with value %#v", f.Op, f.Attribute, a.Type, v)
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte("equal age 12; or(and(search bio hello)) limit 25"))
	f.Add([]byte{0, 0, 0, 3, 0, 1, 1, 2, 5, 2, 1, 2, 7, 0, 4, 12, 2, 3, 30, 19, 3, 2, 0, 1, 2, 3})
	f.Add([]byte{2, 3, 1, 5, 18, 2, 1, 3, 0, 1, 4, 2, 19, 3, 1, 2, 2, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{0xff, 0xfe, 0x80, 0x7f, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteReader{b: data}
		q := r.query()
		docs := []map[string]any{r.doc(1), r.doc(2), r.doc(3)}
		s := testSchema()
		lim := DefaultLimits()

		Match(q.Filters, docs[0]) // unvalidated filters must not panic either

		err := Validate(&q, s, lim)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field == "" || de.Message == "" {
				t.Fatalf("Validate error %#v is not an invalid-field domain.Error", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > lim.MaxLimit || q.Offset < 0 || q.Offset > lim.MaxOffset {
			t.Fatalf("accepted limit %d offset %d", q.Limit, q.Offset)
		}
		for i := range q.Filters {
			checkTyped(t, &q.Filters[i], s)
		}
		for _, d := range docs {
			Match(q.Filters, d)
		}
		if _, err := Run(&q, docs); err != nil && domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("Run: %v", err)
		}
		Aggregate(Aggregation{Func: FuncSum, Attribute: "score", GroupBy: "name"}, docs)
		Aggregate(Aggregation{Func: FuncMax, Attribute: "born", GroupBy: "tags"}, docs)
		// Validating an accepted query again changes nothing and accepts it.
		if err := Validate(&q, s, lim); err != nil {
			t.Fatalf("second Validate: %v", err)
		}
	})
}
