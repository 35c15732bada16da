package wasm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/fnrun"
)

// truncatedMarker ends logs that were cut at their limit.
const truncatedMarker = "…[truncated]"

// wireResponse is the response a module writes on stdout.
type wireResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is a text body, BodyBase64 a binary one; at most one is set.
	Body       *string `json:"body"`
	BodyBase64 *string `json:"bodyBase64"`
}

// parseResponse reads the response from what the module wrote on stdout.
func parseResponse(stdout *capWriter, maxBody int64) (fnrun.Response, error) {
	if stdout.truncated {
		return fnrun.Response{}, fmt.Errorf("%w: stdout over %d bytes", fnrun.ErrResponseLarge, stdout.max)
	}
	out := bytes.TrimSpace(stdout.buf)
	if len(out) == 0 {
		return fnrun.Response{}, fmt.Errorf("%w: no response on stdout", fnrun.ErrCrashed)
	}
	var w wireResponse
	if err := json.Unmarshal(out, &w); err != nil {
		return fnrun.Response{}, fmt.Errorf("%w: stdout is not a response: %v", fnrun.ErrCrashed, err)
	}
	if w.Status == 0 {
		w.Status = 200
	}
	if w.Status < 100 || w.Status > 599 {
		return fnrun.Response{}, fmt.Errorf("%w: response status %d", fnrun.ErrCrashed, w.Status)
	}
	resp := fnrun.Response{Status: w.Status, Headers: w.Headers}
	switch {
	case w.Body != nil && w.BodyBase64 != nil:
		return fnrun.Response{}, fmt.Errorf("%w: response has both body and bodyBase64", fnrun.ErrCrashed)
	case w.Body != nil:
		resp.Body = []byte(*w.Body)
	case w.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*w.BodyBase64)
		if err != nil {
			return fnrun.Response{}, fmt.Errorf("%w: response bodyBase64: %v", fnrun.ErrCrashed, err)
		}
		resp.Body = b
	}
	if int64(len(resp.Body)) > maxBody {
		return fnrun.Response{}, fmt.Errorf("%w: body of %d bytes over %d", fnrun.ErrResponseLarge, len(resp.Body), maxBody)
	}
	return resp, nil
}

// capWriter keeps the first max bytes written to it and counts the rest
// as truncated. Writes never fail, so a module that writes too much is not
// disturbed (its stdout is refused whole afterwards; its logs are cut).
// Used by one execution's goroutine at a time.
type capWriter struct {
	max       int
	buf       []byte
	truncated bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); len(p) > room {
		w.buf = append(w.buf, p[:max(room, 0)]...)
		w.truncated = true
	} else {
		w.buf = append(w.buf, p...)
	}
	return len(p), nil
}

// Bytes is what was kept.
func (w *capWriter) Bytes() []byte { return w.buf }

// String is what was kept, with the marker in the room it takes at the end
// if anything was cut, never longer than max and never splitting a UTF-8
// sequence.
func (w *capWriter) String() string {
	if !w.truncated {
		return string(w.buf)
	}
	n := min(max(w.max-len(truncatedMarker), 0), len(w.buf))
	// If the cut falls inside a UTF-8 sequence, the byte after it is a
	// continuation byte: back up to the sequence's start.
	for i := 0; i < utf8.UTFMax-1 && n > 0 && n < len(w.buf) && !utf8.RuneStart(w.buf[n]); i++ {
		n--
	}
	return string(w.buf[:n]) + truncatedMarker
}
