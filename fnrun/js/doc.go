// Package js is Cairn's JavaScript function runtime: it bundles a
// function's TypeScript or JavaScript with its npm dependencies into one
// CommonJS file (Bundle), checks that the file compiles (Check), and runs
// executions in supervised worker processes (Pool) that embed the goja
// interpreter.
//
// User code follows Appwrite's contract:
//
//	export default async ({ req, res, log, error }) => res.json({ ok: true })
//
// A worker process runs one execution at a time in a fresh goja.Runtime, so
// no JavaScript state survives from one execution to the next; compiled
// programs are cached per code hash, which is what makes warm starts fast.
// The parent process enforces the wall-clock timeout and the memory limit
// (by the worker's resident set size) and replaces a worker it had to kill.
//
// JavaScript code gets no filesystem, no process, no environment and no
// require: only the globals installed here (console, timers, fetch, crypto,
// TextEncoder/TextDecoder, URL/URLSearchParams, atob/btoa, process.env with
// the function's variables). fetch refuses loopback, private, link-local,
// multicast and unspecified addresses, checked on the resolved address at
// dial time, unless FetchOptions allows them.
//
// This package never reads the environment of the process it runs in,
// except WorkerMain, which is a worker process's main.
package js
