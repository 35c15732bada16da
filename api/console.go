package api

import (
	"net/http"

	"github.com/cairn-dev/cairn/console"
)

// consolePath is where the API's origin serves the web console (DESIGN
// §10: the console lives on the API's own origin, never on a site's host).
const consolePath = "/console"

// mountConsole serves the console on the API's host only: a site's own API
// (/_cairn/ on a user-content host) answers 404 there, so no project's
// origin can ever load it or script it.
func (s *Server) mountConsole(mux *http.ServeMux) {
	h := console.Handler(consolePath)
	only := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pinnedProject(r.Context()) != "" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
	mux.Handle(consolePath, only)
	mux.Handle(consolePath+"/", only)
}
