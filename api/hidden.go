package api

import (
	"net/http"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/permission"
)

// A caller who may not see a container (a project, database, collection,
// bucket or function) gets the same answer whether it exists or not: the
// code and message of a missing one. Otherwise a guest could list a
// project's ids by guessing, telling permission_denied from not_found.
// not_found rather than permission_denied everywhere, as Appwrite does:
// a caller who may see the container still gets permission_denied for an
// action it may not do there (it knows the container exists anyway).

func collectionNotFound(dbID, collID string) error {
	return domain.Errorf(domain.KindNotFound, "collection %q not found in database %q", collID, dbID)
}

func bucketNotFound(id string) error {
	return domain.Errorf(domain.KindNotFound, "bucket %q not found", id)
}

func functionNotFound(id string) error {
	return domain.Errorf(domain.KindNotFound, "function %q not found", id)
}

// hiddenNotFound is what a guest's request for a missing project answers:
// the error a missing container of an existing project gives.
func hiddenNotFound(msg any) error {
	if m, ok := msg.(interface {
		GetDatabaseId() string
		GetCollectionId() string
	}); ok {
		return collectionNotFound(m.GetDatabaseId(), m.GetCollectionId())
	}
	if m, ok := msg.(interface{ GetBucketId() string }); ok {
		return bucketNotFound(m.GetBucketId())
	}
	if m, ok := msg.(interface{ GetFunctionId() string }); ok {
		return functionNotFound(m.GetFunctionId())
	}
	return domain.Errorf(domain.KindNotFound, "not found")
}

// hiddenRouteNotFound is hiddenNotFound for a plain HTTP route.
func hiddenRouteNotFound(r *http.Request) error {
	if b := r.PathValue("bucket"); b != "" {
		return bucketNotFound(b)
	}
	if f := r.PathValue("function"); f != "" {
		return functionNotFound(f)
	}
	return domain.Errorf(domain.KindNotFound, "not found")
}

// sees reports whether subj may do anything at all in a container with
// perms: some action granted, or item security (its items may grant it
// some).
func sees(subj permission.Subject, perms []permission.Permission, itemSecurity bool) bool {
	if itemSecurity {
		return true
	}
	for _, a := range []permission.Action{permission.Read, permission.Create, permission.Update, permission.Delete} {
		if permission.Check(subj, a, perms, nil, false) {
			return true
		}
	}
	return false
}
