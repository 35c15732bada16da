package main

import (
	"io"
	"os"
	"sync"
)

// lineWriter hands the log's lines to a file (stderr) from one goroutine,
// so that lines logged at the same time go out in one write system call
// instead of one each: at the default --request-log every request logs a
// line, and the call cost a measurable part of a small request.
//
// Nothing waits on a clock: a line is written as soon as the goroutine
// runs, together with whatever arrived while the previous write was in the
// kernel. Lines keep their order and are never split or dropped; a writer
// waits when maxPending bytes are not yet written. Close writes what is
// pending. What a crash (a panic, a kill) can lose is bounded by what was
// accepted but not yet written at that instant: at most maxPending bytes,
// in practice the lines of the last few microseconds.
type lineWriter struct {
	w    io.Writer
	mu   sync.Mutex
	room *sync.Cond // signalled when pending is written
	// pending holds the lines not yet handed to w; spare is the buffer the
	// goroutine last wrote, reused.
	pending, spare []byte
	kick           chan struct{}
	closed         bool
	done           chan struct{}
}

// maxPending bounds the bytes accepted but not yet written.
const maxPending = 256 << 10

// newLineWriter starts the writer of w; Close stops it.
func newLineWriter(w io.Writer) *lineWriter {
	l := &lineWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.room = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// Write queues p (one log line: slog's handlers write each record with one
// call) and returns at once.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for !l.closed && len(l.pending) > 0 && len(l.pending)+len(p) > maxPending {
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return l.w.Write(p) // after Close: as if unbuffered
	}
	l.pending = append(l.pending, p...)
	select { // under mu: Close cannot have closed kick
	case l.kick <- struct{}{}:
	default: // the goroutine is already due to run
	}
	l.mu.Unlock()
	return len(p), nil
}

func (l *lineWriter) run() {
	defer close(l.done)
	for range l.kick {
		l.flush()
	}
	l.flush()
}

// flush writes what is pending; only run calls it.
func (l *lineWriter) flush() {
	l.mu.Lock()
	buf := l.pending
	l.pending = l.spare[:0]
	l.mu.Unlock()
	if len(buf) > 0 {
		// An error has nowhere to go: slog ignores its writer's too.
		_, _ = l.w.Write(buf)
	}
	l.mu.Lock()
	if cap(buf) <= maxPending*2 {
		l.spare = buf[:0]
	}
	l.room.Broadcast()
	l.mu.Unlock()
}

// Close writes what is pending and stops the goroutine; later writes go
// straight to the file.
func (l *lineWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.kick)
	l.room.Broadcast()
	l.mu.Unlock()
	<-l.done
	return nil
}

// logOutput is where serve's logger writes: a file (stderr, as a service
// manager or a container runtime gives it) through a lineWriter, whose
// system calls it saves; anything else (a test's buffer) as it is.
func logOutput(w io.Writer) (io.Writer, func()) {
	if _, ok := w.(*os.File); !ok {
		return w, func() {}
	}
	l := newLineWriter(w)
	return l, func() { _ = l.Close() }
}
