package streams

import (
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/domain"
)

// Every stored name (stream, subject, bucket) is built here and nowhere else.
// Changing any of these strings orphans existing data: only ever add.
const (
	// SubjectRoot is the first token of every Cairn subject.
	SubjectRoot = "cairn"
	// SystemStream holds the project registry and operator events.
	SystemStream = "CAIRN_SYS"
	// SystemFilter is the subject space of SystemStream.
	SystemFilter = SubjectRoot + "._sys.>"
	// projectStreamPrefix prefixes a project id to name its stream.
	projectStreamPrefix = "PROJECT_"
	// objectStreamPrefix is what nats.go prefixes to an object store bucket
	// name to name its backing stream.
	objectStreamPrefix = "OBJ_"
)

// ValidateProject reports whether id is a well-formed project id: DESIGN.md
// §3's rule (domain.ProjectIDPattern). Lower-case letters, digits and '-'
// are legal in stream names, subject tokens and bucket names alike, so an
// id can be embedded in all three unchanged.
func ValidateProject(id string) error {
	if !domain.ValidProjectID(id) {
		return fmt.Errorf("%w: project id %q must match %s", ErrInvalid, id, domain.ProjectIDPattern)
	}
	return nil
}

// SystemSubject returns "cairn._sys.<parts...>", e.g.
// SystemSubject("projects", id, "create").
func SystemSubject(parts ...string) string {
	return join(SubjectRoot+"._sys", parts)
}

// ProjectStream returns the name of the project's stream, "PROJECT_<id>".
func ProjectStream(project string) string { return projectStreamPrefix + project }

// ProjectSubject returns "cairn.<project>.<parts...>", e.g.
// ProjectSubject("p1", "users", uid, "create").
func ProjectSubject(project string, parts ...string) string {
	return join(SubjectRoot+"."+project, parts)
}

// ProjectFilter returns the whole subject space of a project, "cairn.<id>.>".
func ProjectFilter(project string) string { return SubjectRoot + "." + project + ".>" }

// ObjectStoreName returns the object store bucket of a project. The bucket is
// the bare id (bucket names allow [a-zA-Z0-9_-]), so its backing stream is
// "OBJ_<id>", see ObjectStoreStream.
func ObjectStoreName(project string) string { return project }

// ObjectStoreStream returns the stream backing the project's object store.
func ObjectStoreStream(project string) string { return objectStreamPrefix + ObjectStoreName(project) }

// ProjectFromStream returns the project id of a "PROJECT_<id>" stream name.
func ProjectFromStream(stream string) (string, bool) {
	id, ok := strings.CutPrefix(stream, projectStreamPrefix)
	if !ok || ValidateProject(id) != nil {
		return "", false
	}
	return id, true
}

// ValidRelativeFilter validates a user-given subject filter relative to a
// project ("users.*.create", "databases.db1.>"). Tokens must be non-empty and
// free of whitespace and control characters; '*' and '>' are only allowed as
// whole tokens and '>' only last. Prefixed with ProjectPrefix, this
// guarantees a user's filter never leaves the project's subject space.
func ValidRelativeFilter(f string) error {
	if f == "" {
		return fmt.Errorf("%w: empty subject filter", ErrInvalid)
	}
	tokens := strings.Split(f, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return fmt.Errorf("%w: subject filter %q has an empty token", ErrInvalid, f)
		case tok == ">":
			if i != len(tokens)-1 {
				return fmt.Errorf("%w: subject filter %q: '>' must be the last token", ErrInvalid, f)
			}
		case tok == "*":
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%w: subject filter %q: wildcards must be whole tokens", ErrInvalid, f)
		case strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			return fmt.Errorf("%w: subject filter %q contains whitespace or control characters", ErrInvalid, f)
		}
	}
	return nil
}

// ProjectPrefix is what every subject of a project starts with,
// "cairn.<project>.": strip it to show subjects relative to the project.
func ProjectPrefix(project string) string { return SubjectRoot + "." + project + "." }

// SystemPrefix is what every system subject starts with, "cairn._sys.".
const SystemPrefix = SubjectRoot + "._sys."

func join(prefix string, parts []string) string {
	if len(parts) == 0 {
		return prefix
	}
	return prefix + "." + strings.Join(parts, ".")
}
