// Package storage decides bucket, file and file-token events: bucket
// settings, chunked uploads that may land on any node (the upload's state
// is its last event), file metadata and revocable file tokens. It holds no
// bytes; package filestore stores those.
package storage
