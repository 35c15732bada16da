// Package filestore keeps the bytes of user files in a project's JetStream
// object store and reads them back by byte range.
//
// A file is written as chunks (one per upload request, so resumable uploads
// need no server-side assembly) and each chunk as fixed-size parts, so a
// range read fetches only the parts it needs and neither side ever holds a
// whole file in memory. Each part is optionally compressed and encrypted
// (AES-256-GCM with a per-file key, bound to the part's place in the file).
// The package also parses HTTP Range headers and sniffs content types,
// because both decide how the stored bytes may be served.
//
// It is a storage library: it records nothing about files (the caller keeps
// each file's Layout and Chunks in its events) and must never import the
// API, projections or protobuf packages.
package filestore
