package api

import (
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/domain"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// quickValidator is protovalidate with a shortcut for the hottest request,
// GetDocument: its rules (four id patterns, two bounds) are checked by
// hand, without CEL or regexps, and only a request that passes them
// skips protovalidate. Anything else — every invalid request included —
// goes to protovalidate, so errors are exactly its own
// (TestQuickValidatorAgrees).
type quickValidator struct{ protovalidate.Validator }

func (v quickValidator) Validate(msg proto.Message, opts ...protovalidate.ValidationOption) error {
	if m, ok := msg.(*cairnv1.GetDocumentRequest); ok && len(opts) == 0 && getDocumentValid(m) {
		return nil
	}
	return v.Validator.Validate(msg, opts...)
}

// getDocumentValid reports whether m keeps GetDocumentRequest's rules
// (databases.proto); false may still be valid.
func getDocumentValid(m *cairnv1.GetDocumentRequest) bool {
	return domain.ValidProjectID(m.GetProjectId()) && domain.ValidResourceID(m.GetDatabaseId()) &&
		domain.ValidResourceID(m.GetCollectionId()) && domain.ValidResourceID(m.GetDocumentId()) &&
		len(m.GetSelect()) <= 100 && len(m.GetTransactionId()) <= 36 // bytes ≥ characters
}
