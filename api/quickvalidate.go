package api

import (
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// quickValidator is protovalidate with a shortcut for the hottest
// requests, GetDocument, CreateDocument and ListDocuments: their rules (id
// patterns, bounds, a required field) are checked by hand, without CEL or
// regexps, and only a request that passes them skips protovalidate.
// Anything else — every invalid request included —
// goes to protovalidate, so errors are exactly its own
// (TestQuickValidatorAgrees).
type quickValidator struct{ protovalidate.Validator }

func (v quickValidator) Validate(msg proto.Message, opts ...protovalidate.ValidationOption) error {
	if len(opts) == 0 {
		switch m := msg.(type) {
		case *cairnv1.GetDocumentRequest:
			if getDocumentValid(m) {
				return nil
			}
		case *cairnv1.CreateDocumentRequest:
			if createDocumentValid(m) {
				return nil
			}
		case *cairnv1.ListDocumentsRequest:
			if listDocumentsValid(m) {
				return nil
			}
		}
	}
	return v.Validator.Validate(msg, opts...)
}

// listDocumentsValid reports whether m keeps ListDocumentsRequest's rules
// (databases.proto, with Filter's and Order's); false may still be valid.
// Lengths are checked in bytes, which bound characters from above (a
// minimum of one byte is one character).
func listDocumentsValid(m *cairnv1.ListDocumentsRequest) bool {
	if !domain.ValidProjectID(m.GetProjectId()) || !domain.ValidResourceID(m.GetDatabaseId()) || !domain.ValidResourceID(m.GetCollectionId()) ||
		len(m.GetFilters()) > 100 || len(m.GetSelect()) > 100 || len(m.GetOrders()) > 8 || m.GetLimit() < 0 || m.GetOffset() < 0 ||
		len(m.GetCursorAfter()) > 36 || len(m.GetCursorBefore()) > 36 || !filtersValid(m.GetFilters()) {
		return false
	}
	for _, o := range m.GetOrders() {
		if o == nil || len(o.GetAttribute()) < 1 || len(o.GetAttribute()) > 64 {
			return false
		}
	}
	return true
}

// filtersValid reports whether fs keep Filter's rules.
func filtersValid(fs []*cairnv1.Filter) bool {
	for _, f := range fs {
		if f == nil || f.GetOp() == cairnv1.Operator_OPERATOR_UNSPECIFIED || cairnv1.Operator_name[int32(f.GetOp())] == "" ||
			len(f.GetAttribute()) > 64 || len(f.GetValues()) > 100 || len(f.GetFilters()) > 100 || !filtersValid(f.GetFilters()) {
			return false
		}
	}
	return true
}

// getDocumentValid reports whether m keeps GetDocumentRequest's rules
// (databases.proto); false may still be valid.
func getDocumentValid(m *cairnv1.GetDocumentRequest) bool {
	return domain.ValidProjectID(m.GetProjectId()) && domain.ValidResourceID(m.GetDatabaseId()) &&
		domain.ValidResourceID(m.GetCollectionId()) && domain.ValidResourceID(m.GetDocumentId()) &&
		len(m.GetSelect()) <= 100 && len(m.GetTransactionId()) <= 36 // bytes ≥ characters
}

// createDocumentValid reports whether m keeps CreateDocumentRequest's
// rules and those of the messages inside it (DocumentInput, Permissions;
// the data Struct has none); false may still be valid.
func createDocumentValid(m *cairnv1.CreateDocumentRequest) bool {
	d := m.GetDocument()
	if d == nil || !domain.ValidProjectID(m.GetProjectId()) || !domain.ValidResourceID(m.GetDatabaseId()) ||
		!domain.ValidResourceID(m.GetCollectionId()) || len(d.GetPermissions().GetValues()) > 100 {
		return false
	}
	id := d.GetDocumentId()
	return id == "" || id == "unique()" || domain.ValidResourceID(id)
}
