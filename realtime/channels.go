package realtime

import (
	"fmt"
	"slices"
	"strings"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Kind is an event's action.
type Kind int

// Kinds.
const (
	KindOther Kind = iota
	KindCreate
	KindUpdate
	KindDelete
)

// ValidChannel reports whether name is one of Appwrite's channels: account;
// documents, databases.<db>.collections.<c>.documents[.<d>]; files,
// buckets.<b>.files[.<f>]; teams, teams.<t>; memberships, memberships.<m>;
// executions, functions.<fn>.
func ValidChannel(name string) error {
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "*> \t") {
			return fmt.Errorf("channel %q: empty or wildcard segment", name)
		}
	}
	switch {
	case len(parts) == 1 && (name == "account" || name == "documents" || name == "files" || name == "teams" ||
		name == "memberships" || name == "executions"):
		return nil
	case len(parts) == 2 && (parts[0] == "teams" || parts[0] == "memberships" || parts[0] == "functions"):
		return nil
	case (len(parts) == 5 || len(parts) == 6) && parts[0] == "databases" && parts[2] == "collections" && parts[4] == "documents":
		return nil
	case (len(parts) == 3 || len(parts) == 4) && parts[0] == "buckets" && parts[2] == "files":
		return nil
	}
	return fmt.Errorf("channel %q is not one of account, documents, databases.<db>.collections.<c>.documents[.<d>], files, buckets.<b>.files[.<f>], teams[.<t>], memberships[.<m>], executions, functions.<fn>", name)
}

// Route is what realtime knows of an event from its subject and payload:
// the channels it belongs to, its Appwrite event names and kind, and the
// user an account event is about.
type Route struct {
	Channels []string
	Names    []string
	Kind     Kind
	// AccountOf is the user whose account channel carries the event.
	AccountOf string
	// AccessChange marks events that may change what subscribers may read
	// (teams, memberships, users): cached permissions are stale after it.
	AccessChange bool
}

// RouteOf maps a stored event to its channels and names; subject is its
// stream subject (cairn.<p>.<resource path>.<verb>).
func RouteOf(subject string, env *eventsv1.Envelope) Route {
	parts := strings.Split(subject, ".")
	if len(parts) < 4 {
		return Route{}
	}
	path, verb := parts[2:len(parts)-1], parts[len(parts)-1]
	r := Route{Kind: kindOf(verb)}
	if r.Kind == KindOther && slices.Contains(path, "update") {
		r.Kind = KindUpdate // users.<u>.update.<what changed>
	}
	switch env.GetPayload().(type) {
	case *eventsv1.Envelope_DocumentCreated, *eventsv1.Envelope_DocumentUpdated, *eventsv1.Envelope_DocumentDeleted:
		// databases.<db>.collections.<c>.documents.<d>
		if len(path) == 6 {
			coll := strings.Join(path[:5], ".")
			r.Channels = []string{"documents", coll, coll + "." + path[5]}
		}
	case *eventsv1.Envelope_FileCreated, *eventsv1.Envelope_FileUpdated, *eventsv1.Envelope_FileDeleted:
		// buckets.<b>.files.<f>
		if len(path) == 4 {
			files := strings.Join(path[:3], ".")
			r.Channels = []string{"files", files, files + "." + path[3]}
		}
	case *eventsv1.Envelope_TeamCreated, *eventsv1.Envelope_TeamUpdated, *eventsv1.Envelope_TeamDeleted:
		r.AccessChange = true
		if len(path) == 2 {
			r.Channels = []string{"teams", "teams." + path[1]}
		}
	case *eventsv1.Envelope_MembershipCreated, *eventsv1.Envelope_MembershipUpdated, *eventsv1.Envelope_MembershipDeleted:
		// teams.<t>.memberships.<m>
		r.AccessChange = true
		if len(path) == 4 {
			r.Channels = []string{"memberships", "memberships." + path[3], "teams", "teams." + path[1]}
		}
	case *eventsv1.Envelope_ExecutionCreated, *eventsv1.Envelope_ExecutionUpdated:
		// functions.<fn>.executions.<e>
		if len(path) == 4 {
			r.Channels = []string{"executions", "functions." + path[1]}
		}
	case *eventsv1.Envelope_UserCreated, *eventsv1.Envelope_UserUpdated, *eventsv1.Envelope_UserDeleted,
		*eventsv1.Envelope_SessionCreated, *eventsv1.Envelope_SessionUpdated, *eventsv1.Envelope_SessionsDeleted:
		// users.<u>[.sessions.<s>]…
		r.AccessChange = true
		if len(path) >= 2 {
			r.Channels = []string{"account"}
			r.AccountOf = path[1]
		}
	case *eventsv1.Envelope_PasskeyRegistered, *eventsv1.Envelope_PasskeyRemoved, *eventsv1.Envelope_PasskeyUsed:
		// users.<u>.passkeys.<id>: the account changed, its access did not.
		if len(path) >= 2 {
			r.Channels = []string{"account"}
			r.AccountOf = path[1]
		}
	default:
		return r
	}
	if len(r.Channels) == 0 {
		return Route{}
	}
	r.Names = eventNames(path, verb)
	return r
}

func kindOf(verb string) Kind {
	switch verb {
	case "create":
		return KindCreate
	case "delete":
		return KindDelete
	case "update":
		return KindUpdate
	}
	return KindOther
}

// eventNames are Appwrite's names of an event: the full path with the
// verb, the same with every id as "*", and the path alone.
func eventNames(path []string, verb string) []string {
	full := strings.Join(path, ".") + "." + verb
	wild := make([]string, len(path))
	for i, p := range path {
		if i%2 == 1 {
			wild[i] = "*"
		} else {
			wild[i] = p
		}
	}
	return []string{full, strings.Join(wild, ".") + "." + verb, strings.Join(path, ".")}
}
