package query

import (
	"fmt"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// Prepare checks filters that are evaluated without a collection schema,
// one document at a time (realtime subscriptions), and readies them for
// Match: every operator but search/notSearch (which needs a fulltext
// index) is allowed; regexes are compiled, geo values normalized as
// Validate does, created…/updated… values parsed as datetimes, elemMatch
// children given the array's key. Values of other operators stay as sent
// and compare by Compare. Errors name the field as <field>[i].values[k],
// <field>[i].queries[j]… (field is the request's name for the list).
func Prepare(fs []Filter, field string, lim Limits) error {
	p := preparer{lim: lim.withDefaults()}
	for i := range fs {
		if err := p.filter(&fs[i], fmt.Sprintf("%s[%d]", field, i), 1); err != nil {
			return err
		}
	}
	return nil
}

type preparer struct {
	lim   Limits
	count int
}

func (p *preparer) filter(f *Filter, path string, depth int) error {
	p.count++
	if p.count > p.lim.MaxFilters {
		return domain.FieldError(path, "more than %d filters", p.lim.MaxFilters)
	}
	if depth > p.lim.MaxDepth {
		return domain.FieldError(path, "filters are nested more than %d levels deep", p.lim.MaxDepth)
	}
	switch f.Op {
	case OpAnd, OpOr:
		if len(f.Filters) == 0 {
			return domain.FieldError(path+".queries", "%s needs at least one nested query", f.Op)
		}
		for j := range f.Filters {
			if err := p.filter(&f.Filters[j], fmt.Sprintf("%s.queries[%d]", path, j), depth+1); err != nil {
				return err
			}
		}
		return nil
	case OpSearch, OpNotSearch:
		return domain.FieldError(path+".method", "%s needs a fulltext index, which a single document has not", f.Op)
	case OpElemMatch:
		if f.Attribute == "" {
			return domain.FieldError(path+".attribute", "elemMatch names an array attribute")
		}
		if len(f.Filters) == 0 {
			return domain.FieldError(path+".queries", "elemMatch needs at least one nested query")
		}
		for j := range f.Filters {
			c := &f.Filters[j]
			cp := fmt.Sprintf("%s.queries[%d]", path, j)
			if err := setElemAttribute(c, f.Attribute, cp); err != nil {
				return err
			}
			if err := p.filter(c, cp, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if !knownOp(f.Op) {
		return domain.FieldError(path+".method", "unknown query method %q", string(f.Op))
	}
	if g, ok := desugar(*f); ok {
		if f.Attribute != "" && f.Attribute != g.Attribute {
			return domain.FieldError(path+".attribute", "%s compares %s; it takes no other attribute", f.Op, g.Attribute)
		}
		if err := (&validator{lim: p.lim}).countValues(f, path); err != nil {
			return err
		}
		if g.Attribute == database.AttrCreatedAt || g.Attribute == database.AttrUpdatedAt {
			a := database.Attribute{Key: g.Attribute, Type: database.TypeDatetime}
			for k, val := range g.Values {
				c, err := coerce(a, a, val, fmt.Sprintf("%s.values[%d]", path, k))
				if err != nil {
					return err
				}
				g.Values[k] = c
			}
		}
		*f = g
	}
	if len(f.Filters) > 0 {
		return domain.FieldError(path+".queries", "%s takes no nested queries; only and/or and elemMatch do", f.Op)
	}
	if f.Attribute == "" {
		return domain.FieldError(path+".attribute", "a %s filter names an attribute", f.Op)
	}
	if isGeo(f.Op) {
		return geoValues(f, path)
	}
	if err := (&validator{lim: p.lim}).countValues(f, path); err != nil {
		return err
	}
	for k, val := range f.Values {
		if val == nil {
			return domain.FieldError(fmt.Sprintf("%s.values[%d]", path, k), "null is not a value to compare with; use isNull or isNotNull")
		}
	}
	if f.Op == OpRegex {
		s, ok := f.Values[0].(string)
		if !ok {
			return domain.FieldError(path+".values[0]", "a regex is a string; got %s", describe(f.Values[0]))
		}
		re, err := compileRegex(s, path+".values[0]")
		if err != nil {
			return err
		}
		f.re = re
	}
	return nil
}
