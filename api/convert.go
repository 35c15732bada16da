package api

import (
	"encoding/base64"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

func actor(p access.Principal) *eventsv1.Actor {
	switch p.Kind {
	case access.Operator, access.Member:
		// An operator account is named by id and email; the admin key is
		// no account (empty id).
		return &eventsv1.Actor{Kind: eventsv1.Actor_KIND_OPERATOR, Id: p.ID, SessionId: p.SessionID, Name: p.Name}
	case access.APIKey:
		return &eventsv1.Actor{Kind: eventsv1.Actor_KIND_API_KEY, Id: p.ID, ProjectId: p.Project}
	case access.User:
		// The audit log names end users as it names keys: who, and by
		// which session.
		return &eventsv1.Actor{Kind: eventsv1.Actor_KIND_USER, Id: p.ID, ProjectId: p.Project, SessionId: p.SessionID}
	}
	return &eventsv1.Actor{}
}

func projectOut(p *eventsv1.Project) *cairnv1.Project {
	if p == nil {
		return nil
	}
	return &cairnv1.Project{Id: p.GetId(), Name: p.GetName(),
		Limits: &cairnv1.ProjectLimits{MaxStreamBytes: p.GetLimits().GetMaxStreamBytes(), Replicas: p.GetLimits().GetReplicas(), MaxStorageBytes: p.GetLimits().GetMaxStorageBytes(),
			RequestsPerSecond: p.GetLimits().GetRequestsPerSecond(), RequestBurst: p.GetLimits().GetRequestBurst(),
			MaxConcurrentRequests:       p.GetLimits().GetMaxConcurrentRequests(),
			RealtimeDeliveriesPerSecond: p.GetLimits().GetRealtimeDeliveriesPerSecond(), RealtimeDeliveryBurst: p.GetLimits().GetRealtimeDeliveryBurst()},
		CreatedAt: p.GetCreatedAt(), UpdatedAt: p.GetUpdatedAt()}
}

func keyOut(k *eventsv1.Key) *cairnv1.Key {
	if k == nil {
		return nil
	}
	return &cairnv1.Key{Id: k.GetId(), ProjectId: k.GetProjectId(), Name: k.GetName(), Scopes: k.GetScopes(),
		ExpiresAt: k.GetExpiresAt(), CreatedAt: k.GetCreatedAt(), UpdatedAt: k.GetUpdatedAt()}
}

// pageSize applies the default and the bound of list calls.
func pageSize(n int32) int {
	if n <= 0 {
		return 100
	}
	return int(min(n, 1000))
}

// Page tokens are opaque to clients: the last id or sequence of a page.
func encodeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeToken(t string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return "", domain.FieldError("page_token", "malformed page token")
	}
	return string(b), nil
}

// listPage reads one page through list, asking for one item more than the
// page holds to know whether another follows, and returns it with the
// token of the next page ("" on the last).
func listPage[T interface{ GetId() string }](pageToken string, size int32, list func(after string, limit int) ([]T, error)) ([]T, string, error) {
	after, err := decodeToken(pageToken)
	if err != nil {
		return nil, "", err
	}
	// Tokens hold an id (encodeToken below); anything else would read as
	// "after garbage" and answer an empty page.
	if pageToken != "" && !domain.ValidResourceID(after) {
		return nil, "", domain.FieldError("page_token", "malformed page token")
	}
	n := pageSize(size)
	items, err := list(after, n+1)
	if err != nil || len(items) <= n {
		return items, "", err
	}
	return items[:n], encodeToken(items[n-1].GetId()), nil
}
