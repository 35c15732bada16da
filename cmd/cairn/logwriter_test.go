package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLineWriterKeepsEveryLine: lines written at once from many
// goroutines reach the file whole, once each, each goroutine's in order;
// Close writes what is pending, and writes after it go straight through.
func TestLineWriterKeepsEveryLine(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, closeLog := logOutput(f)
	if _, ok := out.(*lineWriter); !ok {
		t.Fatalf("a file is written through %T, want a *lineWriter", out)
	}
	const writers, lines = 16, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				// Lines of different lengths, some long, so that
				// buffers are reused and grown.
				line := fmt.Sprintf("w%d %d %s\n", g, i, strings.Repeat("x", (i*31)%700))
				if n, err := out.Write([]byte(line)); n != len(line) || err != nil {
					t.Errorf("Write: %d, %v", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeLog()
	if _, err := out.Write([]byte("after close\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if sc.Text() == "after close" {
			if n != writers*lines+1 {
				t.Errorf("the line after Close is line %d, want %d", n, writers*lines+1)
			}
			continue
		}
		var g, i int
		if _, err := fmt.Sscanf(sc.Text(), "w%d %d ", &g, &i); err != nil {
			t.Fatalf("line %d broken: %q: %v", n, sc.Text(), err)
		}
		x := sc.Text()[len(fmt.Sprintf("w%d %d ", g, i)):]
		if g < 0 || g >= writers || i != next[g] || x != strings.Repeat("x", (i*31)%700) {
			t.Fatalf("line %d: %q; want writer %d's line %d next", n, sc.Text(), g, next[g])
		}
		next[g]++
	}
	if n != writers*lines+1 {
		t.Errorf("%d lines in the file, want %d", n, writers*lines+1)
	}
}

// TestLineWriterWritesWithoutWaitingForMore: a single line reaches the
// file on its own, with no later line or Close to push it out.
func TestLineWriterWritesWithoutWaitingForMore(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	out, closeLog := logOutput(w)
	defer closeLog()
	logger := slog.New(slog.NewJSONHandler(out, nil))
	logger.Info("alone", "n", 1)
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, `"msg":"alone","n":1}`) {
			t.Errorf("line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the line was not written")
	}
}

// TestLogOutputLeavesBuffersAlone: what is not a file (a test's buffer) is
// written directly, so a line is there when Log returns.
func TestLogOutputLeavesBuffersAlone(t *testing.T) {
	var b strings.Builder
	out, closeLog := logOutput(&b)
	defer closeLog()
	if out != io.Writer(&b) {
		t.Errorf("a buffer is wrapped in %T", out)
	}
}

// BenchmarkRequestLogLine logs the request line observe writes (same
// attributes) with slog's JSON handler into a file, from
// getDocBenchClients goroutines, directly (one write system call per
// line, as before lineWriter) and through a lineWriter, alternating chunks
// of lines; it reports the process's CPU per line of each
// (direct-cpu-ns/op, linewriter-cpu-ns/op).
func BenchmarkRequestLogLine(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lw := newLineWriter(f)
	defer lw.Close()
	loggers := [2]*slog.Logger{slog.New(slog.NewJSONHandler(f, nil)), slog.New(slog.NewJSONHandler(lw, nil))}
	ctx := context.Background()
	logOne := func(l *slog.Logger) {
		l.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("route", "/cairn.v1.DatabasesService/GetDocument"),
			slog.String("method", "POST"), slog.Int("status", 200), slog.String("code", "ok"), slog.String("project", "bench"),
			slog.String("caller", "key"), slog.String("caller_id", "01KBRJ4ZC7N7XH5Q2V3W4Y5Z6A"),
			slog.Duration("duration", 123456*time.Nanosecond), slog.Int64("bytes_in", 41), slog.Int64("bytes_out", 187),
			slog.String("request_id", "01KBRJ4ZC7N7XH5Q2V3W4Y5Z6B"))
	}
	const chunk = 64 * getDocBenchClients
	var cpu [2]time.Duration
	var lines [2]int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; lines[0]+lines[1] < b.N; i++ {
		which := i % 2
		n := min(chunk, b.N-lines[0]-lines[1])
		cpu0 := processCPU(b)
		var wg sync.WaitGroup
		for g := range getDocBenchClients {
			wg.Go(func() {
				for j := g; j < n; j += getDocBenchClients {
					logOne(loggers[which])
				}
			})
		}
		wg.Wait()
		if which == 1 {
			// The lines are written, not only queued, before the clock
			// stops: Close's work is the same as a flush's.
			for {
				lw.mu.Lock()
				empty := len(lw.pending) == 0
				lw.mu.Unlock()
				if empty {
					break
				}
				time.Sleep(10 * time.Microsecond)
			}
		}
		cpu[which] += processCPU(b) - cpu0
		lines[which] += n
	}
	b.StopTimer()
	if lines[0] > 0 && lines[1] > 0 {
		b.ReportMetric(float64(cpu[0].Nanoseconds())/float64(lines[0]), "direct-cpu-ns/op")
		b.ReportMetric(float64(cpu[1].Nanoseconds())/float64(lines[1]), "linewriter-cpu-ns/op")
	}
}
