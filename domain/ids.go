package domain

// UniqueID is the placeholder a client sends to ask for a generated id, as
// in Appwrite.
const UniqueID = "unique()"

// The patterns of ids, checked by validID without a regexp: every request
// checks a few, and a regexp match cost more than the rest of parsing a
// credential.
const (
	ProjectIDPattern  = `^[a-z0-9][a-z0-9-]{0,35}$`
	ResourceIDPattern = `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,35}$`
)

// ValidProjectID reports whether id matches ProjectIDPattern.
func ValidProjectID(id string) bool { return validID(id, false) }

// ValidResourceID reports whether id matches ResourceIDPattern (no dots:
// ids become NATS subject tokens).
func ValidResourceID(id string) bool { return validID(id, true) }

func validID(id string, resource bool) bool {
	if len(id) == 0 || len(id) > 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case resource && 'A' <= c && c <= 'Z':
		case i > 0 && (c == '-' || resource && c == '_'):
		default:
			return false
		}
	}
	return true
}
