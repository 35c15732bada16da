package domain

import "regexp"

// UniqueID is the placeholder a client sends to ask for a generated id, as
// in Appwrite.
const UniqueID = "unique()"

var (
	projectIDPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,35}$`)
	resourceIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,35}$`)
)

// ValidProjectID reports whether id is a well-formed project id.
func ValidProjectID(id string) bool { return projectIDPattern.MatchString(id) }

// ValidResourceID reports whether id is a well-formed resource id (no dots:
// ids become NATS subject tokens).
func ValidResourceID(id string) bool { return resourceIDPattern.MatchString(id) }
