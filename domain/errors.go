package domain

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that transports can map it to a status in one
// table (api/errors.go). The set is closed: add kinds, never repurpose them.
type Kind int

const (
	// KindInternal is anything unclassified: callers see "internal error",
	// operators see the full log line.
	KindInternal Kind = iota
	KindInvalid
	KindNotFound
	KindAlreadyExists
	KindConflict
	KindPermissionDenied
	KindUnauthenticated
	KindFailedPrecondition
	KindResourceExhausted
	KindUnavailable
)

var kindNames = [...]string{"internal", "invalid", "not_found", "already_exists", "conflict",
	"permission_denied", "unauthenticated", "failed_precondition", "resource_exhausted", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a classified error whose Message is safe to show to the caller.
type Error struct {
	Kind Kind
	// Field names the request field that was wrong, when there is one.
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf returns a classified error with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an invalid-argument error naming the field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, or
// KindInternal when there is none.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return KindInternal
}

// AfterWrite is a decision's error that comes with events which must be
// stored anyway (a failed attempt at a code is counted): the write path
// appends the events, then returns Err.
type AfterWrite struct{ Err error }

func (e *AfterWrite) Error() string { return e.Err.Error() }

func (e *AfterWrite) Unwrap() error { return e.Err }
