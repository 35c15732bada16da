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
