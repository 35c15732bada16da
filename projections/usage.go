package projections

import (
	"bytes"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Usage per UTC day, as the log tells it (GetProjectUsage adds the nodes'
// counters of package usage). An event's day is its stream timestamp's, so
// a rebuild writes the same counters.
//
//	p/<project>/udaily/<YYYY-MM-DD>  counters: events, documents, stored
//	                                 bytes (changes that day), finished
//	                                 executions, their wall ms and CPU µs
//	p/<project>/udocs/<collection uid>  live documents of a collection, so
//	                                 deleting it takes its count off the day
const (
	partDaily   = "udaily/"
	partDocLive = "udocs/"
)

// Positions of the daily counters.
const (
	dailyEvents = iota
	dailyDocuments
	dailyStorageBytes
	dailyExecutions
	dailyExecutionWallMs
	dailyExecutionCPUUs
	dailyCounters
)

const dayLayout = "2006-01-02"

func dailyPrefix(project string) string { return pp(project) + partDaily }

func dailyKey(project string, t time.Time) []byte {
	return []byte(dailyPrefix(project) + t.UTC().Format(dayLayout))
}

func docLiveKey(project, collUID string) []byte {
	return []byte(pp(project) + partDocLive + collUID)
}

// addDaily adds deltas to ev's day's counters from position first on.
func addDaily(txn *badger.Txn, project string, ev event, first int, deltas ...int64) error {
	all := make([]int64, dailyCounters)
	copy(all[first:], deltas)
	return addCounters(txn, dailyKey(project, ev.msg.Time), all...)
}

// dayOf is t's UTC day, compared without formatting it (once per event):
// days since the Unix epoch (a UTC day is 86,400 Unix seconds).
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// countEvents adds evs to their days' event counts, one write per day.
func countEvents(txn *badger.Txn, project string, evs []event) error {
	for i := 0; i < len(evs); {
		day := dayOf(evs[i].msg.Time)
		j := i + 1
		for j < len(evs) && dayOf(evs[j].msg.Time) == day {
			j++
		}
		if err := addDaily(txn, project, evs[i], dailyEvents, int64(j-i)); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// addDocuments moves a collection's live documents and ev's day's.
func addDocuments(txn *badger.Txn, project string, ev event, collUID string, delta int64) error {
	if err := addCounters(txn, docLiveKey(project, collUID), delta); err != nil {
		return err
	}
	return addDaily(txn, project, ev, dailyDocuments, delta)
}

// docCounts holds a transaction's changes to the live documents of
// collections and of days, written once at its end (write) instead of
// read and written for every create and delete: a rebuild's windowed
// transactions and the live projector's runs of document events keep
// them. Whatever reads those counters as they stand (a collection's
// deletion) comes after a write.
type docCounts struct {
	colls []collCount
	days  []dayCount
}

// collCount and dayCount are a change to a collection's and to a day's
// live documents.
type (
	collCount struct {
		collUID string
		delta   int64
	}
	dayCount struct {
		day    int64 // dayOf
		ev     event // one of the day's, for dailyKey
		delta  int64
		events int64 // the day's events, when counted here (addEvents)
	}
)

// add keeps addDocuments' change.
func (c *docCounts) add(ev event, collUID string, delta int64) {
	i := 0
	for i < len(c.colls) && c.colls[i].collUID != collUID {
		i++
	}
	if i == len(c.colls) {
		c.colls = append(c.colls, collCount{collUID: collUID})
	}
	c.colls[i].delta += delta
	c.days[c.day(ev)].delta += delta
}

// addEvents keeps countEvents' change, so that a day's counters are
// written once for its documents and its events.
func (c *docCounts) addEvents(evs []event) {
	for _, ev := range evs {
		c.days[c.day(ev)].events++
	}
}

// day returns the index of ev's day in c.days, adding it.
func (c *docCounts) day(ev event) int {
	day := dayOf(ev.msg.Time)
	i := 0
	for i < len(c.days) && c.days[i].day != day {
		i++
	}
	if i == len(c.days) {
		c.days = append(c.days, dayCount{day: day, ev: ev})
	}
	return i
}

func (c *docCounts) pending() bool { return len(c.colls) > 0 || len(c.days) > 0 }

// reset forgets what was kept (an abandoned transaction's, or written).
func (c *docCounts) reset() { c.colls, c.days = c.colls[:0], c.days[:0] }

// write writes what add kept and forgets it. A counter is written even
// when its changes add up to nothing, as applying them one by one would
// have (the key then exists, holding 0).
func (c *docCounts) write(txn *badger.Txn, project string) error {
	for _, cc := range c.colls {
		if err := setCounters(txn, docLiveKey(project, cc.collUID), cc.delta); err != nil {
			return err
		}
	}
	var all [dailyCounters]int64
	for _, dc := range c.days {
		all[dailyEvents], all[dailyDocuments] = dc.events, dc.delta
		if err := setCounters(txn, dailyKey(project, dc.ev.msg.Time), all[:]...); err != nil {
			return err
		}
	}
	c.reset()
	return nil
}

// addDocuments is addDocuments, kept in sp.counts when the live run keeps
// them.
func (sp keyspace) addDocuments(txn *badger.Txn, ev event, collUID string, delta int64) error {
	if sp.counts == nil {
		return addDocuments(txn, sp.project, ev, collUID, delta)
	}
	sp.counts.add(ev, collUID, delta)
	return nil
}

// dropDocuments takes a deleted collection's documents off ev's day.
func dropDocuments(txn *badger.Txn, project string, ev event, collUID string) error {
	c, err := readCounters(txn, docLiveKey(project, collUID), 1)
	if err != nil {
		return err
	}
	if err := txn.Delete(docLiveKey(project, collUID)); err != nil {
		return err
	}
	return addDaily(txn, project, ev, dailyDocuments, -c[0])
}

// DayUsage is one UTC day of a project's usage from its log.
type DayUsage struct {
	// Day is YYYY-MM-DD.
	Day string
	// Events appended that day.
	Events int64
	// Documents and StorageBytes held at the end of the day.
	Documents, StorageBytes int64
	// Executions that finished that day, their wall and CPU time.
	Executions, ExecutionWallMs, ExecutionCPUUs int64
}

// DailyUsage returns every day from `from` to `to` (YYYY-MM-DD, inclusive,
// from <= to), each with the documents and stored bytes carried from the
// days before it.
func (p *Projections) DailyUsage(project, from, to string) ([]DayUsage, error) {
	start, err := time.Parse(dayLayout, from)
	if err != nil {
		return nil, err
	}
	end, err := time.Parse(dayLayout, to)
	if err != nil {
		return nil, err
	}
	stored := map[string][]int64{}
	var docsBefore, bytesBefore int64
	err = p.db.View(func(txn *badger.Txn) error {
		prefix := []byte(dailyPrefix(project))
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		last := append(bytes.Clone(prefix), to...)
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if bytes.Compare(k, last) > 0 {
				break
			}
			c, err := readCounters(txn, bytes.Clone(k), dailyCounters)
			if err != nil {
				return err
			}
			day := strings.TrimPrefix(string(k), string(prefix))
			if day < from {
				docsBefore += c[dailyDocuments]
				bytesBefore += c[dailyStorageBytes]
				continue
			}
			stored[day] = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []DayUsage
	docs, sbytes := docsBefore, bytesBefore
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		day := d.Format(dayLayout)
		c := stored[day]
		if c == nil {
			c = make([]int64, dailyCounters)
		}
		docs += c[dailyDocuments]
		sbytes += c[dailyStorageBytes]
		out = append(out, DayUsage{Day: day, Events: c[dailyEvents], Documents: docs, StorageBytes: sbytes,
			Executions: c[dailyExecutions], ExecutionWallMs: c[dailyExecutionWallMs], ExecutionCPUUs: c[dailyExecutionCPUUs]})
	}
	return out, nil
}
