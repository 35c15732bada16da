// Package wasm runs Cairn functions written as WebAssembly modules (WASI
// preview 1) in wazero, inside the Cairn process. It compiles a module once
// and runs each execution in a fresh instance within the limits of
// fnrun.Limits. It must never let an execution reach the host: no host
// filesystem, no host environment, no network, no host functions of its own,
// and no execution may crash or block the process past its timeout.
//
// # ABI
//
// A function is a WASI command: a module whose only imports come from
// "wasi_snapshot_preview1" and which exports "_start" (what
// `GOOS=wasip1 GOARCH=wasm go build`, `cargo build --target wasm32-wasip1`
// and TinyGo's `-target=wasip1` produce). Each execution instantiates it
// afresh and calls _start once; nothing survives between executions.
//
// stdin is the request, one JSON object with fnrun.Request's fields:
//
//	{"method":"POST","path":"/hello","query":{"a":["1"]},
//	 "headers":{"content-type":"text/plain"},"body":"aGk=",
//	 "variables":{"GREETING":"hi"},"projectId":"…","functionId":"…",
//	 "deploymentId":"…","executionId":"…","trigger":"http",
//	 "event":…,"eventNames":[…],"apiEndpoint":"…","apiKey":"…","userJwt":"…"}
//
// body and event are base64 (how encoding/json writes bytes); fields with
// nothing in them may be absent.
//
// stdout is the response, one JSON object:
//
//	{"status":201,"headers":{"content-type":"text/plain"},"body":"hello"}
//	{"status":200,"headers":{…},"bodyBase64":"iVBORw0KGgo…"}
//
// body is the body as a string; bodyBase64 the body in standard base64, for
// binary bodies; at most one of the two. status 0 or absent means 200. An
// execution that writes nothing on stdout, or something that is not such an
// object, fails with fnrun.ErrCrashed. The body may be at most
// Limits.MaxResponseBytes long; stdout as a whole at most twice that plus
// 64 KiB (room for escaping and headers); beyond either the execution fails
// with fnrun.ErrResponseLarge.
//
// stderr is the log: it becomes Response.Logs, or Response.Errors when the
// execution fails, cut at Limits.MaxLogBytes and marked "…[truncated]".
//
// Exit: returning from _start or exiting with code 0 succeeds; any other exit
// code or a trap fails with fnrun.ErrCrashed (fnrun.ErrMemory when the module
// ran out of its memory limit, as far as that can be told: the module's memory
// grew to near the limit, or stderr says "out of memory").
//
// There are no arguments. The environment holds only the function's
// variables plus CAIRN_PROJECT_ID, CAIRN_FUNCTION_ID, CAIRN_API_ENDPOINT
// and CAIRN_API_KEY (which win over variables of the same name); nothing of
// the host's. No directory is mounted, so every path fails to open; WASI
// preview 1 has no sockets. The wall and monotonic clocks, sleeping (cut
// short at the timeout) and random_get (from crypto/rand) work.
//
// # Limits
//
// Limits.MaxMemoryBytes caps the module's linear memory (rounded up to whole
// 64 KiB pages): memory.grow beyond it fails, and a module whose declared
// minimum memory is larger fails with fnrun.ErrMemory before it starts.
// Limits.Timeout is a wall-clock bound: the instance is closed when it
// passes, even inside a loop that never calls the host, and the execution
// fails with fnrun.ErrTimeout. A deadline or cancellation of the caller's
// context instead fails the execution with the context's error.
package wasm
