package api

import (
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// databasesHandler serves DatabasesService: the schema side (databases,
// collections, attributes, indexes) for servers, the documents side for
// servers and end users under the collections' permissions.
type databasesHandler struct {
	cairnv1connect.UnimplementedDatabasesServiceHandler
	*Server
	// outs, when set, keeps the answers of cached pages' documents.
	outs *docOuts
}
