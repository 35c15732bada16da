package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/project"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
	"github.com/cairn-dev/cairn/transfer"
)

// Project export, import and fork over plain HTTP (bytes, not messages),
// for the instance operator only: a package holds every secret of the
// project, re-sealed under the caller's passphrase.
const (
	// HeaderPassphrase carries the package passphrase.
	HeaderPassphrase = "Cairn-Passphrase"
	// TrailerExportStatus is "ok" once a streamed export is complete; a
	// client that does not see it must discard what it received.
	TrailerExportStatus = "Cairn-Export-Status"
	// DefaultMaxImportBytes is the largest package an import accepts
	// unless --max-import-bytes says otherwise: the upload is spooled to a
	// temporary file, so the bound is on the server's disk.
	DefaultMaxImportBytes = 16 << 30
)

func (s *Server) mountTransfer(mux *http.ServeMux) {
	// An owner may export its project (the package is the project's own
	// data); import and fork create projects: administrators only.
	mux.Handle("GET /v1/projects/{project}/export", s.operatorOnlyJSON(http.HandlerFunc(s.serveExport), access.Owner))
	mux.Handle("POST /v1/projects/import", s.operatorOnlyJSON(http.HandlerFunc(s.serveImport), ""))
	mux.Handle("POST /v1/projects/{project}/fork", s.operatorOnlyJSON(http.HandlerFunc(s.serveFork), ""))
}

// operatorOnlyJSON serves next to instance operators (the admin key or an
// administrator account) and, when member is set, to operator accounts
// with that role on the route's project; other accounts learn nothing of
// projects they hold no role on (404).
func (s *Server) operatorOnlyJSON(next http.Handler, member access.Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.authenticate(r.Header.Get("Authorization"))
		if err == nil && p.Kind == access.Member && member != "" {
			project := r.PathValue("project")
			role, ok := p.RoleIn(project)
			if !ok {
				transferError(w, http.StatusNotFound, fmt.Errorf("project %q not found", project))
				return
			}
			if role.AtLeast(member) {
				next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p.In(project))))
				return
			}
		}
		if err != nil || !p.IsOperator() {
			// Project keys and sessions included: a package carries the
			// project's secrets and every user's hashes.
			transferError(w, http.StatusForbidden, errors.New("export, import and fork are for instance operators (export also for a project's owners): send Authorization: Bearer <admin key or console session>"))
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

func transferError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// transferStatus maps a transfer error to an HTTP status.
func transferStatus(err error) int {
	switch {
	case errors.Is(err, transfer.ErrBadPackage), errors.Is(err, transfer.ErrPassphrase), errors.Is(err, streams.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, transfer.ErrExists):
		return http.StatusConflict
	case errors.Is(err, errNotFound), errors.Is(err, streams.ErrNoStream):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (s *Server) transferInstance(r *http.Request) *transfer.Instance {
	return &transfer.Instance{
		Store:   s.store,
		Secrets: walkSecrets,
		Seal:    s.seal,
		Unseal:  s.unseal,
		Exists: func(id string) bool {
			_, err := s.reads.Project(id)
			return err == nil
		},
		Register: func(ctx context.Context, p *eventsv1.Project) error {
			meta, err := writeMeta(principal(r.Context()), "transfer", r.Header.Get)
			if err != nil {
				return err
			}
			meta.IdempotencyKey = "" // an import is not retried by key
			meta.Prepare = func(ctx context.Context, _ []*eventsv1.Envelope) error {
				return s.store.EnsureProjectStream(ctx, p.GetId(), streamLimits(p.GetLimits()))
			}
			_, err = s.log.Write(ctx, eventlog.ProjectAggregate(p.GetId()), meta, eventlog.Decide(project.Evolve, func(st project.State) ([]*eventsv1.Envelope, error) {
				return project.Decide(st, project.Create{ID: p.GetId(), Name: p.GetName(), Limits: p.GetLimits(), Now: s.log.Now()})
			}))
			return err
		},
		WaitApplied: s.reads.WaitApplied,
		NewID:       s.log.NewID,
		Now:         s.log.Now,
		Logger:      s.logger,
	}
}

func (s *Server) serveExport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("project")
	p, err := s.reads.Project(id)
	if err != nil {
		transferError(w, http.StatusNotFound, fmt.Errorf("project %q not found", id))
		return
	}
	pass := r.Header.Get(HeaderPassphrase)
	if pass == "" {
		transferError(w, http.StatusBadRequest, fmt.Errorf("%s is required: it protects the package's secrets", HeaderPassphrase))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.cairnpkg"`)
	w.Header().Set("Trailer", TrailerExportStatus)
	start := time.Now()
	m, err := s.transferInstance(r).Export(r.Context(), p, w, pass, nil)
	if err != nil {
		// Headers are gone: the missing trailer tells the client.
		w.Header().Set(TrailerExportStatus, "failed: "+strings.ReplaceAll(err.Error(), "\n", " "))
		s.logger.ErrorContext(r.Context(), "export failed", "project", id, "err", err)
		return
	}
	w.Header().Set(TrailerExportStatus, "ok")
	s.logger.InfoContext(r.Context(), "project exported", "project", id, "events", m.Events, "objects", m.Objects,
		"object_bytes", m.ObjectBytes, "took", time.Since(start))
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("query parameter %s=%q: want true or false", name, v)
	}
	return b, nil
}

func policyParams(r *http.Request) (transfer.Policy, error) {
	var p transfer.Policy
	var err1, err2 error
	p.KeepKeys, err1 = boolParam(r, "keep_keys")
	p.KeepSessions, err2 = boolParam(r, "keep_sessions")
	return p, errors.Join(err1, err2)
}

func (s *Server) serveImport(w http.ResponseWriter, r *http.Request) {
	policy, err := policyParams(r)
	if err != nil {
		transferError(w, http.StatusBadRequest, err)
		return
	}
	as := r.URL.Query().Get("as")
	if as != "" {
		if err := streams.ValidateProject(as); err != nil {
			transferError(w, http.StatusBadRequest, err)
			return
		}
	}
	// The package is read twice (verify everything, then write), so it is
	// spooled to a temporary file first.
	f, err := os.CreateTemp("", "cairn-import-*.cairnpkg")
	if err != nil {
		transferError(w, http.StatusInternalServerError, err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	tooLarge := fmt.Errorf("the package is larger than this instance's import limit of %d bytes (--max-import-bytes)", s.maxImport)
	if r.ContentLength > s.maxImport {
		transferError(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	if _, err := io.Copy(f, http.MaxBytesReader(w, r.Body, s.maxImport)); err != nil {
		if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
			transferError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		transferError(w, http.StatusBadRequest, fmt.Errorf("reading the package: %w", err))
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		transferError(w, http.StatusInternalServerError, err)
		return
	}
	start := time.Now()
	res, err := s.transferInstance(r).Import(r.Context(), f, transfer.ImportOptions{
		Passphrase: r.Header.Get(HeaderPassphrase), As: as, Policy: policy})
	if err != nil {
		transferError(w, transferStatus(err), err)
		return
	}
	s.logger.InfoContext(r.Context(), "project imported", "project", res.Project, "events", res.Events, "took", time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) serveFork(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("project")
	p, err := s.reads.Project(id)
	if err != nil {
		transferError(w, http.StatusNotFound, fmt.Errorf("project %q not found", id))
		return
	}
	policy, err := policyParams(r)
	if err != nil {
		transferError(w, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	opts := transfer.ForkOptions{As: q.Get("as"), Policy: policy}
	if opts.As == "" {
		transferError(w, http.StatusBadRequest, errors.New("query parameter as (the new project's id) is required"))
		return
	}
	if at := q.Get("at"); at != "" {
		if n, err := strconv.ParseUint(at, 10, 64); err == nil && n > 0 {
			opts.At = n
		} else if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			opts.AtTime = t
		} else {
			transferError(w, http.StatusBadRequest, fmt.Errorf("query parameter at=%q: want a sequence (1, 2, …) or an RFC 3339 time", at))
			return
		}
	}
	res, err := s.transferInstance(r).Fork(r.Context(), p, opts)
	if err != nil {
		transferError(w, transferStatus(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// walkSecrets is transfer.SecretWalker for every sealed field of the
// events, with the project and purpose each is sealed for (the purposes
// users.go, account_mfa.go, functions.go and storage.go seal with). A
// sealed field it does not know fails the transfer rather than copy a
// value the target could not open.
func walkSecrets(env *eventsv1.Envelope, fn func(project, purpose string, sealed []byte) ([]byte, error)) error {
	return walkSealed(env.ProtoReflect(), fn)
}

func walkSealed(m protoreflect.Message, fn func(project, purpose string, sealed []byte) ([]byte, error)) error {
	var err error
	reseal := func(project, purpose string, b *[]byte) {
		if err != nil || len(*b) == 0 {
			return
		}
		var out []byte
		if out, err = fn(project, purpose, *b); err == nil {
			*b = out
		}
	}
	known := false
	switch x := m.Interface().(type) {
	case *eventsv1.User:
		if x.GetMfa() != nil {
			reseal(x.GetProjectId(), sealTOTP(x.GetId()), &x.Mfa.TotpSecretSealed)
		}
	case *eventsv1.AuthSettings:
		if x.GetSmtp() != nil {
			reseal(x.GetProjectId(), sealSMTPPassword, &x.Smtp.PasswordSealed)
		}
		for _, o := range x.GetOauthProviders() {
			reseal(x.GetProjectId(), sealOAuthSecret+o.GetId(), &o.ClientSecretSealed)
		}
	case *eventsv1.Function:
		for _, v := range x.GetVariables() {
			reseal(x.GetProjectId(), "function-variable:"+x.GetId()+":"+v.GetKey(), &v.Sealed)
		}
	case *eventsv1.File:
		reseal(x.GetProjectId(), "file-key:"+layoutUID(x.GetBucketUid(), x.GetBlobUid()), &x.SealedKey)
		known = true
	case *eventsv1.Mfa, *eventsv1.SmtpSettings, *eventsv1.OAuthProvider, *eventsv1.FunctionVariable:
		known = true // their parent re-sealed them
	}
	if err != nil {
		return err
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.BytesKind && strings.Contains(string(fd.Name()), "sealed") && !known:
			err = fmt.Errorf("sealed field %s is unknown to export/import", fd.FullName())
		case fd.Kind() != protoreflect.MessageKind:
		case fd.IsList():
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = walkSealed(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					err = walkSealed(mv.Message(), fn)
					return err == nil
				})
			}
		default:
			err = walkSealed(v.Message(), fn)
		}
		return err == nil
	})
	return err
}
