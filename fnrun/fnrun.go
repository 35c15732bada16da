// Package fnrun is what a function runtime takes and gives: one execution's
// request (HTTP-like, plus its trigger and credentials) and its response,
// with the limits every runtime enforces. The runtimes are fnrun/wasm
// (WASI modules in wazero) and fnrun/js (JavaScript in goja, in supervised
// worker processes).
package fnrun

import (
	"errors"
	"time"
)

// Request is one execution's input.
type Request struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query,omitempty"`
	Headers map[string]string   `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
	// Variables are the function's variables, secrets unsealed.
	Variables map[string]string `json:"variables,omitempty"`
	ProjectID string            `json:"projectId"`
	// FunctionID, DeploymentID and ExecutionID name what runs.
	FunctionID   string `json:"functionId"`
	DeploymentID string `json:"deploymentId"`
	ExecutionID  string `json:"executionId"`
	// Trigger is "http", "event" or "schedule"; Event the event's payload
	// as JSON for an event trigger, EventNames its Appwrite names.
	Trigger    string   `json:"trigger"`
	Event      []byte   `json:"event,omitempty"`
	EventNames []string `json:"eventNames,omitempty"`
	// APIEndpoint and APIKey let the code call Cairn's API with a
	// short-lived key limited to the function's scopes; UserJWT is the
	// calling user's, when a user called it.
	APIEndpoint string `json:"apiEndpoint,omitempty"`
	APIKey      string `json:"apiKey,omitempty"`
	UserJWT     string `json:"userJwt,omitempty"`
}

// Response is one execution's output.
type Response struct {
	Status int `json:"status"`
	// Headers: a value with "\n" is several field lines of that header
	// (two Set-Cookie do not fit in a map otherwise).
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
	// Logs and Errors are what the code wrote (console.log / stdout,
	// console.error / stderr), truncated at Limits.MaxLogBytes.
	Logs   string `json:"logs,omitempty"`
	Errors string `json:"errors,omitempty"`
	// CPUTime is the CPU time the execution used, as its runtime measured
	// it (0 where it cannot: outside Linux). Never read from the code.
	CPUTime time.Duration `json:"-"`
}

// Limits bound one execution.
type Limits struct {
	// Timeout is the wall-clock bound; the code is interrupted after it.
	Timeout time.Duration
	// MaxMemoryBytes bounds the execution's memory.
	MaxMemoryBytes int64
	// MaxResponseBytes bounds the response body; MaxLogBytes logs and
	// errors each (truncated, with a marker).
	MaxResponseBytes int64
	MaxLogBytes      int
}

// DefaultLimits are used for zero fields.
func DefaultLimits() Limits {
	return Limits{Timeout: 15 * time.Second, MaxMemoryBytes: 128 << 20, MaxResponseBytes: 6 << 20, MaxLogBytes: 64 << 10}
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = d.MaxMemoryBytes
	}
	if l.MaxResponseBytes <= 0 {
		l.MaxResponseBytes = d.MaxResponseBytes
	}
	if l.MaxLogBytes <= 0 {
		l.MaxLogBytes = d.MaxLogBytes
	}
	return l
}

// Errors an execution can fail with (wrapped with detail).
var (
	ErrTimeout       = errors.New("fnrun: execution timed out")
	ErrMemory        = errors.New("fnrun: execution exceeded its memory limit")
	ErrInvalidCode   = errors.New("fnrun: invalid code")
	ErrCrashed       = errors.New("fnrun: execution failed")
	ErrResponseLarge = errors.New("fnrun: response too large")
)
