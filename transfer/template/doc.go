// Package template is Cairn's "project as code": a declarative project file
// (cairn.json) describing what a client project is made of — databases,
// collections with their attributes and indexes, buckets, functions (with
// code paths relative to the file), sites' settings, auth settings, web
// platforms, teams and webhooks — and the three operations on it:
//
//   - Pull reads a live project through the public Connect API into a File;
//   - Diff compares a File with a live project and returns a Plan of
//     creates, changes and deletes, destructive ones marked;
//   - Apply carries a Plan out, each change one ordinary API call (so one
//     ordinary event), in dependency order, waiting for attributes and
//     indexes the server builds in the background.
//
// A template is such a file applied to a new project.
//
// Secrets never enter the file: an SMTP password, an OAuth client secret or
// a secret function variable is named by the environment variable holding
// it, read at apply time. The package reads no environment itself: the
// caller passes a lookup function. It talks to the server only through the
// generated clients and never reads storage directly.
package template
