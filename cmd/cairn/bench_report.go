package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets from the brief: Cairn's write path keeps most of JetStream's rate,
// and a rebuild keeps most of the raw read rate.
const (
	targetWriteRatio  = 0.60
	targetReplayRatio = 0.50
)

var phaseLabel = map[string]string{"publish": "(a) js.Publish", "write": "(b) UpdateKey", "getkey": "GetKey (read)"}

// report prints the tables, then every figure as one greppable raw line.
func (r *benchRun) report(w io.Writer, took time.Duration) {
	o := r.o
	fmt.Fprintf(w, "\nCairn bench — %s — took %s\n", goInfo(), took.Round(time.Second))
	fmt.Fprintf(w, "Load average (1/5/15 min) at start %s, at end %s.\n", r.loadStart, r.loadEnd)
	fmt.Fprintln(w, "Server in-process (embedded JetStream + Badger, a fresh data dir per sync mode); the clients run in")
	fmt.Fprintln(w, "the same process over loopback h2c and share its CPUs.")
	if o.ops > 0 {
		fmt.Fprintf(w, "Each load: %d operations.\n", o.ops)
	} else {
		fmt.Fprintf(w, "Each load: %s after a %s warm-up.\n", o.duration, o.warmup)
	}
	fmt.Fprintf(w, "(a) js.Publish awaiting the ack, %d B, to a stream with a project stream's settings\n", o.msgBytes)
	fmt.Fprintf(w, "(b) KeysService.UpdateKey (rename) via Connect, operator key, %d keys (worker i: key i mod %d)\n", o.keys, o.keys)
	fmt.Fprintln(w, "GetKey: the same RPC shape with no write, the ceiling of the HTTP transport for (b)")

	tw := newTable(w)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "sync\ttest\tconc\tops/s\tp50\tp99\terrors\t")
	for _, l := range r.loads {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%d\t\n", l.sync, phaseLabel[l.phase], l.conc, l.s.rate(),
			fmtDur(l.s.pct(0.50)), fmtDur(l.s.pct(0.99)), l.s.errs)
	}
	tw.Flush()
	for _, l := range r.loads {
		if l.s.firstErr != nil {
			fmt.Fprintf(w, "first error of %s sync %s c=%d: %v\n", l.phase, l.sync, l.conc, l.s.firstErr)
		}
	}

	hi := slices.Max(o.conc)
	fmt.Fprintf(w, "\n(b)/(a) at concurrency %d (target >= %.0f%%)\n", hi, targetWriteRatio*100)
	tw = newTable(w)
	fmt.Fprintln(tw, "sync\t(a) ops/s\t(b) ops/s\t(b)/(a)\t\tGetKey ops/s\t(b)/GetKey\t")
	for _, mode := range o.syncs {
		a, b, g := r.find("publish", mode, hi), r.find("write", mode, hi), r.find("getkey", mode, hi)
		if a == nil || b == nil || g == nil {
			continue
		}
		ratio := b.s.rate() / a.s.rate()
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f%%\t%s\t%.0f\t%.0f%%\t\n", mode, a.s.rate(), b.s.rate(), ratio*100,
			verdict(ratio, targetWriteRatio), g.s.rate(), 100*b.s.rate()/g.s.rate())
	}
	tw.Flush()

	if len(r.replays) > 0 {
		fmt.Fprintf(w, "\n(c) replay of %d events (%d keys), median of %d (target rebuild/read >= %.0f%%)\n",
			o.events, benchReplayKeys, o.rounds, targetReplayRatio*100)
		tw = newTable(w)
		fmt.Fprintln(tw, "sync\tfill (async pub)\tread events/s\trebuild events/s\trebuild/read\t\t")
		for _, rr := range r.replays {
			ratio := rr.rebuildRate() / rr.readRate()
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f%%\t%s\t\n", rr.sync, fmtDur(rr.fill), rr.readRate(),
				rr.rebuildRate(), ratio*100, verdict(ratio, targetReplayRatio))
		}
		tw.Flush()
	}

	if len(o.curve) > 0 {
		fmt.Fprintf(w, "\nSync-interval curve at concurrency %d\n", o.curveConc)
		tw = newTable(w)
		fmt.Fprintln(tw, "sync\t(a) ops/s\t(a) p99\t(b) ops/s\t(b) p50\t(b) p99\t(b)/(a)\t")
		for _, mode := range o.curve {
			a, b := r.find("publish", mode, o.curveConc), r.find("write", mode, o.curveConc)
			if a == nil || b == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.0f\t%s\t%s\t%.0f%%\t\n", mode, a.s.rate(), fmtDur(a.s.pct(0.99)),
				b.s.rate(), fmtDur(b.s.pct(0.50)), fmtDur(b.s.pct(0.99)), 100*b.s.rate()/a.s.rate())
		}
		tw.Flush()
	}

	if len(r.projects) > 0 {
		fmt.Fprintf(w, "\n(d) projects: `cairn serve` as a child process (sync %s), %d concurrent CreateProject;\n", o.projSync, o.projConc)
		fmt.Fprintln(w, "RSS from /proc/<pid>/status; restart = SIGTERM, exec again, until GET /readyz answers 200")
		tw = newTable(w)
		fmt.Fprintln(tw, "projects\tcreated\tfailed\tcreate time\tcreates/s\tcreate p99\tRSS after\tstop\trestart: listening\trestart: ready\tRSS restarted\tthreads\tfds\t")
		for _, p := range r.projects {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%.0f\t%s\t%d MiB\t%s\t%s\t%s\t%d MiB\t%d\t%d\t\n", p.total, p.create.ops, p.create.errs,
				fmtDur(p.create.elapsed), p.create.rate(), fmtDur(p.create.pct(0.99)), p.after.RSSKiB>>10,
				fmtDur(p.stop), fmtDur(p.listen), fmtDur(p.ready), p.restarted.RSSKiB>>10,
				p.restarted.Threads, p.restarted.FDs)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nraw:")
	for _, l := range r.loads {
		fmt.Fprintf(w, "raw load phase=%s sync=%s conc=%d ops=%d errors=%d secs=%.4f rate=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
			l.phase, l.sync, l.conc, l.s.ops, l.s.errs, l.s.elapsed.Seconds(), l.s.rate(), us(l.s.pct(0.50)),
			us(l.s.pct(0.90)), us(l.s.pct(0.99)), us(l.s.pct(0.999)), us(l.s.pct(1)))
	}
	for _, rr := range r.replays {
		fmt.Fprintf(w, "raw replay sync=%s events=%d fill_secs=%.4f read_secs=%s rebuild_secs=%s read_rate=%.1f rebuild_rate=%.1f\n",
			rr.sync, rr.events, rr.fill.Seconds(), secsList(rr.reads), secsList(rr.rebuilds), rr.readRate(), rr.rebuildRate())
	}
	for _, p := range r.projects {
		fmt.Fprintf(w, "raw projects total=%d created=%d failed=%d create_secs=%.4f create_rate=%.1f create_p50_us=%d create_p99_us=%d "+
			"rss_kib=%d hwm_kib=%d threads=%d fds=%d stop_secs=%.4f restart_listen_secs=%.4f restart_ready_secs=%.4f "+
			"restarted_rss_kib=%d restarted_threads=%d restarted_fds=%d\n",
			p.total, p.create.ops, p.create.errs, p.create.elapsed.Seconds(), p.create.rate(), us(p.create.pct(0.50)), us(p.create.pct(0.99)),
			p.after.RSSKiB, p.after.HWMKiB, p.after.Threads, p.after.FDs, p.stop.Seconds(), p.listen.Seconds(),
			p.ready.Seconds(), p.restarted.RSSKiB, p.restarted.Threads, p.restarted.FDs)
	}
	for _, p := range r.profiles {
		fmt.Fprintf(w, "cpu profile: %s\n", p)
	}
}

func (r *benchRun) find(phase, mode string, conc int) *loadRow {
	for i := range r.loads {
		if l := &r.loads[i]; l.phase == phase && l.sync == mode && l.conc == conc {
			return l
		}
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func verdict(ratio, target float64) string {
	if ratio >= target {
		return "ok"
	}
	return "MISSED"
}

// fmtDur prints a duration with about three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func us(d time.Duration) int64 { return d.Microseconds() }

func secsList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.4f", d.Seconds())
	}
	return strings.Join(s, ",")
}
