// Package domain holds Cairn's business rules: the error kinds every layer
// speaks, and, in its sub-packages, one pure decider per bounded context
// (Decide(state, command) → events, Evolve(state, event) → state).
//
// Nothing under domain performs I/O: no NATS, Badger, Connect or net/http
// imports, no clocks and no random numbers. Time and ids arrive in commands.
package domain
