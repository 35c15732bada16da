package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/function"
	"github.com/cairn-dev/cairn/domain/headers"
	"github.com/cairn-dev/cairn/fnrun"
)

// Plain HTTP routes of functions: a function answers on
// /v1/functions/<project>/<function>/<any path> like an HTTP endpoint, and
// code of any size is uploaded to
// POST /v1/projects/<project>/functions/<function>/deployments[?activate=true].
const maxFunctionRequestBody = 1 << 20

func (s *Server) mountFunctions(mux *http.ServeMux) {
	// Functions answer on their own hosts (api/hosts); on the API's host
	// their old paths redirect there.
	redirect := func(w http.ResponseWriter, r *http.Request) {
		redirectToHost(w, r, s.hosts.FunctionURL(r.PathValue("project"), r.PathValue("function")), r.PathValue("path"))
	}
	mux.HandleFunc("/v1/functions/{project}/{function}/{path...}", redirect)
	mux.HandleFunc("/v1/functions/{project}/{function}", redirect)
	mux.HandleFunc("POST /v1/projects/{project}/functions/{function}/deployments", s.uploadFunctionDeployment)
}

// hopHeaders are not handed to code (headers.Check keeps them, and more,
// from being taken from it).
var hopHeaders = map[string]bool{"connection": true, "keep-alive": true, "transfer-encoding": true, "upgrade": true,
	"te": true, "trailer": true, "proxy-authorization": true, "proxy-authenticate": true}

// platformHeader reports whether the platform alone sets request header k
// (lower case) for a function's code: its trigger, event, key and the
// caller's JWT (x-appwrite-*), and Cairn's own. A caller's value for one
// is dropped, or a guest could hand the code a key or a user's JWT of its
// choosing, or pose as an event trigger.
func platformHeader(k string) bool {
	return strings.HasPrefix(k, "x-appwrite-") || strings.HasPrefix(k, "x-cairn-") || strings.HasPrefix(k, "cairn-")
}

// callerHeaders returns the headers of a caller's request without those
// only the platform sets (platformHeader).
func callerHeaders(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if k = strings.ToLower(k); !platformHeader(k) {
			out[k] = v
		}
	}
	return out
}

func (s *Server) serveFunction(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if !domain.ValidProjectID(project) {
		s.httpError(w, r, domain.FieldError("project", "malformed project id"))
		return
	}
	p, err := s.httpCaller(r, project, access.ExecutionsWrite)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	f, err := s.loadFunction(project, r.PathValue("function"))
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if err := s.mayExecute(project, p, f); err != nil {
		s.httpError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFunctionRequestBody))
	if err != nil {
		s.httpError(w, r, domain.Errorf(domain.KindResourceExhausted, "a function request body is at most %d bytes", maxFunctionRequestBody))
		return
	}
	headers := map[string]string{}
	for k, v := range r.Header {
		k = strings.ToLower(k)
		// The caller's credential is not the function's business.
		if hopHeaders[k] || k == "authorization" || k == "cookie" || platformHeader(k) {
			continue
		}
		headers[k] = strings.Join(v, ", ")
	}
	meta, err := writeMeta(p, "HTTP /v1/functions", r.Header.Get)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	x := execRequest{f: f, p: p, trigger: function.TriggerHTTP, id: s.log.NewID(), req: fnrun.Request{
		Method: r.Method, Path: "/" + r.PathValue("path"), Query: r.URL.Query(), Headers: headers, Body: body}}
	e, seq, err := s.runExecution(r.Context(), meta, x, nil)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	s.setFunctionHeaders(r, w.Header(), project, f.GetId(), e.GetResponseHeaders())
	h := w.Header()
	h.Set("Cairn-Execution-Id", e.GetId())
	h.Set(headerSeq, strconv.FormatUint(seq, 10))
	status := int(e.GetResponseStatus())
	if e.GetStatus() == function.StatusFailed {
		// The function's failure, not the server's: say what it was.
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": "function_failed", "execution": e.GetId(),
			"message": fmt.Sprintf("function %q failed: %s", f.GetId(), firstLine(e.GetErrors()))})
		return
	}
	if status < 100 || status > 999 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(e.GetResponseBody())
}

// setFunctionHeaders copies what a function's response sets into h, but
// not the headers user content may not set (headers.Check): those are
// stripped, and logged once per header and response for the function's
// owner to find. A value with "\n" is several field lines (how a runtime
// sends two Set-Cookie in a map); each line is checked on its own.
func (s *Server) setFunctionHeaders(r *http.Request, h http.Header, project, fn string, set map[string]string) {
	var stripped map[string]bool
	for k, v := range set {
		multi := strings.Contains(v, "\n")
		for line := range strings.SplitSeq(v, "\n") {
			if multi {
				line = strings.TrimSuffix(line, "\r")
				if line == "" {
					continue
				}
			}
			err := headers.Check("headers", k, line)
			if err == nil {
				h.Add(k, line)
				continue
			}
			if stripped[k] {
				continue
			}
			if stripped == nil {
				stripped = map[string]bool{}
			}
			stripped[k] = true
			s.logger.WarnContext(r.Context(), "function response header stripped",
				"project", project, "function", fn, "header", k, "reason", err)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func (s *Server) uploadFunctionDeployment(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	p, err := s.authorizeHTTP(r, project, access.FunctionsWrite)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	code, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.functions.MaxCodeBytes))
	if err != nil {
		if isMaxBytes(err) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.httpError(w, r, domain.Errorf(domain.KindResourceExhausted, "a deployment is at most %d bytes", s.functions.MaxCodeBytes))
			return
		}
		s.httpError(w, r, err)
		return
	}
	if len(code) == 0 {
		s.httpError(w, r, domain.FieldError("body", "the deployment's code is empty"))
		return
	}
	meta, err := writeMeta(p, "POST /v1/functions/deployments", r.Header.Get)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	activate, _ := strconv.ParseBool(r.URL.Query().Get("activate"))
	f, d, seq, err := s.createDeployment(r.Context(), meta, project, r.PathValue("function"), code, activate)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	out, err := protojson.Marshal(deploymentOut(f, d))
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set(headerSeq, strconv.FormatUint(seq, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(out)
}
