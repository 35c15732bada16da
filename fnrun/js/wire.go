package js

import (
	"time"

	"github.com/cairn-dev/cairn/fnrun"
)

// The parent and a worker speak gob over the worker's stdin (jobs) and
// stdout (replies). The worker first sends a reply of kind kindReady; after
// that, exactly one reply per job, except that a job naming code the worker
// has not cached gets a reply of kind kindNeedCode and is then sent again
// with its code.

// job is one execution sent to a worker.
type job struct {
	// Hash is the hex SHA-256 of Code; Code is left out when the parent
	// believes the worker has it cached.
	Hash    string
	Code    []byte
	Request fnrun.Request
	Limits  fnrun.Limits
	Fetch   FetchOptions
}

// Reply kinds. The error kinds map to fnrun's errors in the parent.
const (
	kindOK       = ""
	kindReady    = "ready"
	kindNeedCode = "need-code"
	kindTimeout  = "timeout"
	kindCrashed  = "crashed"
	kindInvalid  = "invalid"
	kindLarge    = "large"
)

// reply is a worker's answer to a job.
type reply struct {
	Kind     string
	Message  string
	Response fnrun.Response
	// Took is how long the execution ran in the worker, compile included.
	Took time.Duration
}
