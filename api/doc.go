// Package api serves Cairn over HTTP: the Connect services (Connect, gRPC and
// gRPC-Web on one port), their interceptors (recovery, errors, authentication,
// access rules, validation, consistency tokens), health and reflection.
//
// Handlers turn requests into domain commands and answer from events or read
// models; they never touch Badger or JetStream directly except through the
// write path (eventlog), the read side (projections) and the audit reader.
package api
