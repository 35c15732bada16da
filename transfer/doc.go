// Package transfer moves a whole project between Cairn instances (export
// and import of a .cairnpkg package) and copies a project's history up to
// a point into a new project on the same instance (fork).
//
// A package is a tar archive, so `tar tvf p.cairnpkg` lists it:
//
//	cairnpkg.json      header: format "cairnpkg", version, source project
//	                   (id, name, limits), last sequence, argon2id salt and
//	                   parameters, a passphrase check value
//	events/000001 …    the project's stream in order, up to 4 MiB of framed
//	                   records each (sequence, subject relative to the
//	                   project, headers, envelope bytes)
//	objects/000001 …   one object of the project's object store each (file
//	                   parts, site blobs, function code); name and metadata
//	                   in PAX records
//	manifest.json      counts, every entry's size and SHA-256, and an
//	                   HMAC-SHA256 of the manifest under the passphrase key
//
// Secrets sealed with the source instance's master key are re-sealed in the
// package under a key derived from the export passphrase (argon2id,
// AES-256-GCM, bound to the secret's purpose); import re-seals them with the
// target's master key for the new project id. Subjects and every
// project_id field of the envelopes are rewritten to the new id.
//
// Import verifies the whole package (version, passphrase, checksums, MAC,
// every secret) before it writes anything, then writes the objects and the
// events into a stream of the new id and registers the project last: a
// failure before that deletes the stream and object store again, so a failed
// import leaves no project behind.
package transfer
