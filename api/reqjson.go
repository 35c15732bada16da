package api

import (
	"bytes"
	"context"
	"io"
	"sync"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The protobuf JSON of GetDocument's request, read by hand: a flat object
// of a few short ASCII strings, which protojson reads by reflection.
// Only the plainest form is read here — known fields, each once, strings
// without escapes or non-ASCII bytes, select as an array of such strings;
// anything else (null, an escape, an unknown or repeated field, a syntax
// error) is left to protojson, which then decides and words any error
// (FuzzGetDocumentRequestJSON: whatever is read here, protojson reads the
// same).

// decodeGetDocumentJSON fills m from data; false when protojson must.
func decodeGetDocumentJSON(data []byte, m *cairnv1.GetDocumentRequest) bool {
	r := jsonReader{b: data}
	if !r.byte('{') {
		return false
	}
	var seen [6]bool
	if !r.byte('}') {
		for {
			key, ok := r.str()
			if !ok || !r.byte(':') {
				return false
			}
			i := getDocumentField(key)
			if i < 0 || seen[i] {
				return false
			}
			seen[i] = true
			if i == 4 {
				if m.Select, ok = r.strs(); !ok {
					return false
				}
			} else {
				v, ok := r.str()
				if !ok {
					return false
				}
				switch i {
				case 0:
					m.ProjectId = v
				case 1:
					m.DatabaseId = v
				case 2:
					m.CollectionId = v
				case 3:
					m.DocumentId = v
				case 5:
					m.TransactionId = v
				}
			}
			if r.byte('}') {
				break
			}
			if !r.byte(',') {
				return false
			}
		}
	}
	r.space()
	return r.i == len(r.b)
}

// getDocumentField is the field a JSON name (or the proto name, which
// protojson accepts too) stands for, in field order; -1 for none.
func getDocumentField(key string) int {
	switch key {
	case "projectId", "project_id":
		return 0
	case "databaseId", "database_id":
		return 1
	case "collectionId", "collection_id":
		return 2
	case "documentId", "document_id":
		return 3
	case "select":
		return 4
	case "transactionId", "transaction_id":
		return 5
	}
	return -1
}

type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// byte consumes c after any white space, if it is next.
func (r *jsonReader) byte(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (r *jsonReader) str() (string, bool) {
	if !r.byte('"') {
		return "", false
	}
	start := r.i
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := string(r.b[start:r.i])
			r.i++
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

// strs reads an array of such strings.
func (r *jsonReader) strs() ([]string, bool) {
	var out []string
	ok := r.array(func() bool {
		s, ok := r.str()
		out = append(out, s)
		return ok
	})
	return out, ok
}

var requestBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeByHand reads the requests that have a hand-written reader
// (GetDocument's, CreateDocument's, ListDocuments'); false when protojson
// must.
func decodeByHand(data []byte, msg any) bool {
	switch m := msg.(type) {
	case *cairnv1.GetDocumentRequest:
		return decodeGetDocumentJSON(data, m)
	case *cairnv1.CreateDocumentRequest:
		return decodeCreateDocumentJSON(data, m)
	case *cairnv1.ListDocumentsRequest:
		return decodeListDocumentsJSON(data, m)
	}
	return false
}

// unmarshalRequestJSON reads GetDocument's, CreateDocument's and
// ListDocuments' requests by hand when it can and leaves everything else
// to protojson (codec).
func unmarshalRequestJSON(ctx context.Context, codec interface {
	UnmarshalRead(context.Context, io.Reader, any) error
}, src io.Reader, msg any) error {
	switch msg.(type) {
	case *cairnv1.GetDocumentRequest, *cairnv1.CreateDocumentRequest, *cairnv1.ListDocumentsRequest:
	default:
		return codec.UnmarshalRead(ctx, src, msg)
	}
	m := msg.(interface{ Reset() })
	buf := requestBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			requestBuffers.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(src); err != nil {
		return err
	}
	if decodeByHand(buf.Bytes(), msg) {
		return nil
	}
	m.Reset()
	return codec.UnmarshalRead(ctx, bytes.NewReader(buf.Bytes()), msg)
}
