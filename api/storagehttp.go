package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/filestore"
	"github.com/cairn-dev/cairn/preview"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// Plain HTTP routes of storage. The project comes from the Cairn-Project
// header or the project query parameter (an <img src> cannot send
// headers); the caller from Authorization, the project's session cookie,
// a file token (?token=, read only) or nobody (a guest).
const (
	storageFilesPath = "/v1/storage/buckets/{bucket}/files"
	headerReceived   = "Cairn-Upload-Received"
	headerPreview    = "Cairn-Preview-Cache"
	// multipartSlack is room for a multipart body's boundaries and fields
	// around a chunk.
	multipartSlack = 1 << 20
)

func (s *Server) mountStorage(mux *http.ServeMux) {
	mux.HandleFunc("POST "+storageFilesPath, s.uploadFile)
	mux.HandleFunc("GET "+storageFilesPath+"/{file}/download", func(w http.ResponseWriter, r *http.Request) { s.serveFile(w, r, true) })
	mux.HandleFunc("GET "+storageFilesPath+"/{file}/view", func(w http.ResponseWriter, r *http.Request) { s.serveFile(w, r, false) })
	mux.HandleFunc("GET "+storageFilesPath+"/{file}/preview", s.servePreviewImage)
}

func requestProject(r *http.Request) (string, error) {
	p := r.Header.Get(headerProject)
	if p == "" {
		p = r.URL.Query().Get("project")
	}
	if !domain.ValidProjectID(p) {
		return "", domain.FieldError("project", "send the project id in the %s header or the project query parameter", headerProject)
	}
	return p, nil
}

// httpCaller authenticates a plain HTTP storage request for project: a
// key needs scope, a session or JWT must be the project's; no credential
// is a guest. Cairn-Min-Seq is honoured.
func (s *Server) httpCaller(r *http.Request, project string, scope access.Scope) (p access.Principal, err error) {
	ctx := r.Context()
	noteProject(ctx, project)
	defer func() {
		if err == nil {
			noteCaller(ctx, p)
		}
	}()
	if err := s.checkOrigin(ctx, project); err != nil {
		return access.Principal{}, err
	}
	pr, err := s.reads.Project(project)
	if err != nil {
		if errors.Is(err, errNotFound) {
			// As a missing bucket or function would (hidden.go).
			return access.Principal{}, hiddenRouteNotFound(r)
		}
		return access.Principal{}, err
	}
	// Charged once the credential is accepted (projectrate.go).
	defer func() {
		if err == nil {
			err = s.rates.charge(ctx, project, pr.GetLimits(), p)
		}
	}()
	if err := s.waitSeq(ctx, r.Header.Get(headerMinSeq), headerMinSeq, streams.ProjectStream(project)); err != nil {
		return access.Principal{}, err
	}
	authz := r.Header.Get("Authorization")
	token, bearer := strings.CutPrefix(authz, "Bearer ")
	if authz != "" && !bearer {
		return access.Principal{}, domain.Errorf(domain.KindUnauthenticated, "Authorization: send Bearer <key or session>")
	}
	fromCookie := false
	if token == "" {
		token = cookieValue(r.Header.Values("Cookie"), sessionCookie(project))
		fromCookie = token != ""
	}
	if token == "" {
		return access.Principal{Kind: access.Anonymous, Project: project}, nil
	}
	p, err = s.projectCredential(project, token, scope)
	if err != nil && fromCookie {
		return p, cookieRefused(project, err)
	}
	if pin := pinnedProject(ctx); err == nil && pin != "" && p.Project != pin {
		return p, pinnedRefusal(pin)
	}
	return p, err
}

// projectCredential resolves a bearer token (key, session or JWT) for a
// project's plain HTTP or WebSocket route: a session or JWT must be the
// project's and past MFA, a key (or the operator) needs scope.
func (s *Server) projectCredential(project, token string, scope access.Scope) (access.Principal, error) {
	var p access.Principal
	var err error
	if looksLikeJWT(token) {
		p, err = s.jwtPrincipal(project, token)
	} else {
		p, err = s.auth.authenticate("Bearer " + token)
	}
	if err != nil {
		return p, err
	}
	switch p.Kind {
	case access.User:
		if p.Project != project {
			return p, domain.Errorf(domain.KindPermissionDenied, "the credential belongs to another project")
		}
		if p.MfaPending {
			return p, domain.Errorf(domain.KindPermissionDenied, "complete the second factor first (CompleteMfa)")
		}
	default:
		if err := access.Authorize(p, project, scope, s.now()); err != nil {
			return p, err
		}
	}
	return p.In(project), nil
}

// contentRange parses "bytes <first>-<last>/<total>" of a chunk.
func contentRange(v string) (offset, length, total int64, err error) {
	spec, ok := strings.CutPrefix(v, "bytes ")
	rng, tot, ok2 := strings.Cut(spec, "/")
	first, last, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, 0, domain.FieldError("Content-Range", "must be bytes <first>-<last>/<total>")
	}
	a, err1 := strconv.ParseInt(first, 10, 64)
	b, err2 := strconv.ParseInt(last, 10, 64)
	t, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || a < 0 || b < a || t <= b {
		return 0, 0, 0, domain.FieldError("Content-Range", "must be bytes <first>-<last>/<total> with first <= last < total")
	}
	return a, b - a + 1, t, nil
}

// uploadFile takes a file or one chunk of it: POST
// /v1/storage/buckets/{bucket}/files, as multipart/form-data (fields
// fileId, name, permissions[] before the file part) or as the raw bytes
// (query fileId, name, permissions). With Content-Range the body is one
// chunk; chunks must come in order and may go to any node.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) {
	project, err := requestProject(r)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	p, err := s.httpCaller(r, project, access.FilesWrite)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	bv, err := s.openBucket(project, r.PathValue("bucket"), p)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	meta, err := writeMeta(p, "POST /v1/storage/files", r.Header.Get)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	c := chunkRequest{user: p, length: -1, total: -1}
	limit := s.storage.MaxFileSize
	if v := r.Header.Get("Content-Range"); v != "" {
		if c.offset, c.length, c.total, err = contentRange(v); err != nil {
			s.httpError(w, r, err)
			return
		}
		if c.length > s.storage.MaxChunkSize {
			s.httpError(w, r, domain.Errorf(domain.KindResourceExhausted, "a chunk is at most %d bytes", s.storage.MaxChunkSize))
			return
		}
		limit = c.length
		if n, err := strconv.ParseInt(r.Header.Get("Cairn-Chunks-Total"), 10, 64); err == nil && n > 0 {
			c.chunksTotal = n
		}
	}
	body := http.MaxBytesReader(w, r.Body, limit+multipartSlack)
	q := r.URL.Query()
	c.fileID, c.name = q.Get("fileId"), q.Get("name")
	if r.Header.Get("Cairn-File-Id") != "" {
		c.fileID = r.Header.Get("Cairn-File-Id")
	}
	if perms, ok := q["permissions"]; ok {
		c.perms = &perms
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		part, err := formFields(multipart.NewReader(body, params["boundary"]), &c)
		if err != nil {
			s.httpError(w, r, err)
			return
		}
		defer part.Close()
		c.body = part
	} else {
		c.body = body
		if c.name == "" {
			s.httpError(w, r, domain.FieldError("name", "required: the file's name (query name=)"))
			return
		}
	}
	res, err := s.putChunk(r.Context(), meta, bv, c)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set(headerReceived, strconv.FormatInt(res.received, 10))
	if res.seq > 0 {
		w.Header().Set(headerSeq, strconv.FormatUint(res.seq, 10))
	}
	out, err := protojson.Marshal(fileOut(res.file))
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if res.complete {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusAccepted)
	}
	_, _ = w.Write(out)
}

// formFields reads the form fields up to the file part and returns it.
func formFields(mr *multipart.Reader, c *chunkRequest) (*multipart.Part, error) {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, domain.FieldError("file", "the form has no file part")
		}
		if err != nil {
			return nil, domain.FieldError("body", "malformed multipart form: %v", err)
		}
		name := part.FormName()
		if name == "file" {
			if c.name == "" {
				c.name = part.FileName()
			}
			if c.name == "" {
				return nil, domain.FieldError("name", "required: a name field or the file part's filename")
			}
			return part, nil
		}
		v, err := io.ReadAll(io.LimitReader(part, 64<<10))
		part.Close()
		if err != nil {
			return nil, domain.FieldError("body", "malformed multipart form: %v", err)
		}
		switch name {
		case "fileId":
			c.fileID = string(v)
		case "name":
			c.name = string(v)
		case "permissions[]", "permissions":
			if c.perms == nil {
				c.perms = &[]string{}
			}
			*c.perms = append(*c.perms, string(v))
		default:
			return nil, domain.FieldError(name, "unknown form field (fields are fileId, name, permissions[] and then file)")
		}
	}
}

// fileForRead authorizes a read of a file: by the caller's permissions,
// or by a file token in the URL.
func (s *Server) fileForRead(r *http.Request) (*eventsv1.File, error) {
	project, err := requestProject(r)
	if err != nil {
		return nil, err
	}
	p, err := s.httpCaller(r, project, access.FilesRead)
	if err != nil {
		return nil, err
	}
	bv, err := s.openBucketView(project, r.PathValue("bucket"), p)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("file")
	if token := r.URL.Query().Get("token"); token != "" {
		f, err := s.reads.File(project, bv.b, id)
		if err == nil && s.tokenGrants(project, f, token) {
			return f, nil
		}
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		if bv.hidden {
			return nil, bucketNotFound(bv.b.GetId())
		}
		return nil, domain.Errorf(domain.KindPermissionDenied, "the file token is not valid for file %q (revoked, expired or another file's)", id)
	}
	if bv.hidden {
		return nil, bucketNotFound(bv.b.GetId())
	}
	return s.readableFile(bv, id)
}

// etagMatches reports whether an If-None-Match value lists etag.
func etagMatches(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}

// contentDisposition names the file for a browser; the name is UTF-8 in
// filename* and ASCII-only in filename.
func contentDisposition(kind, name string) string {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, ascii, url.PathEscape(name))
}

// serveFile answers download (attachment) and view (inline) with ranges
// and ETags. A type a browser would run script in (HTML, SVG, XML…) is
// never inline from the API origin: view serves it as an attachment with a
// sandboxing CSP.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, download bool) {
	f, err := s.fileForRead(r)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	h := w.Header()
	etag := `"` + f.GetSha256() + `"`
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Accept-Ranges", "bytes")
	active := filestore.Active(f.GetMimeType())
	if active {
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	}
	kind := "inline"
	if download || active {
		kind = "attachment"
	}
	h.Set("Content-Disposition", contentDisposition(kind, f.GetName()))
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.GetMimeType())
	size := f.GetSize()
	start, end, status := int64(0), size, http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" && (r.Header.Get("If-Range") == "" || r.Header.Get("If-Range") == etag) {
		rg, ok, err := filestore.ParseRange(rh, size)
		if errors.Is(err, filestore.ErrUnsatisfiable) {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "out_of_range",
				"message": fmt.Sprintf("range %q is outside the file's %d bytes", rh, size)})
			return
		}
		if ok {
			start, end, status = rg.Start, rg.End, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
		}
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead || end == start {
		return
	}
	cw := &countingResponse{ResponseWriter: w}
	defer func() { s.meter.Download(f.GetProjectId(), cw.n) }()
	if err := s.readFile(r.Context(), f, start, end, cw); err != nil {
		// Headers are gone: the client sees a short body.
		s.logger.WarnContext(r.Context(), "serving file", "project", f.GetProjectId(), "file", f.GetId(), "err", err)
	}
}

func (s *Server) readFile(ctx context.Context, f *eventsv1.File, start, end int64, w io.Writer) error {
	layout, err := s.fileLayout(f)
	if err != nil {
		return err
	}
	obs, err := s.store.ObjectStore(ctx, f.GetProjectId())
	if err != nil {
		return err
	}
	return filestore.ReadRange(ctx, obs, layout, fileChunks(f), start, end, w)
}

// servePreviewImage renders (or serves from cache) a preview of an image.
func (s *Server) servePreviewImage(w http.ResponseWriter, r *http.Request) {
	f, err := s.fileForRead(r)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	opts, err := preview.ParseOptions(r.URL.Query())
	if oe, ok := errors.AsType[*preview.OptionError](err); ok {
		s.httpError(w, r, domain.FieldError(oe.Param, "%s", oe.Reason))
		return
	} else if err != nil {
		s.httpError(w, r, domain.FieldError("query", "%v", err))
		return
	}
	if !preview.Supported(f.GetMimeType()) {
		s.httpError(w, r, domain.Errorf(domain.KindInvalid, "file %q is %s: previews are made of jpeg, png, gif and webp images", f.GetId(), f.GetMimeType()))
		return
	}
	if f.GetSize() > s.storage.PreviewMaxBytes {
		s.httpError(w, r, domain.Errorf(domain.KindInvalid, "file %q has %d bytes: previews are made of images up to %d bytes", f.GetId(), f.GetSize(), s.storage.PreviewMaxBytes))
		return
	}
	key := opts.Key()
	etag := `"` + f.GetSha256()[:min(32, len(f.GetSha256()))] + "-" + key + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	purpose := "preview:" + f.GetBlobUid()
	out, ctype, hit := []byte(nil), "", false
	if sealed, err := s.reads.Preview(f.GetProjectId(), f.GetBlobUid(), key); err == nil {
		// Cached previews are sealed: those of encrypted files must not sit
		// on a node's disk in clear.
		if plain, err := s.unseal(f.GetProjectId(), purpose, sealed); err == nil {
			if i := bytes.IndexByte(plain, 0); i > 0 {
				ctype, out, hit = string(plain[:i]), plain[i+1:], true
			}
		}
	}
	if !hit {
		// Renders are CPU-bound: at most one per core at a time, so a burst
		// of previews queues instead of starving every other request.
		select {
		case s.renders <- struct{}{}:
			defer func() { <-s.renders }()
		case <-r.Context().Done():
			s.httpError(w, r, r.Context().Err())
			return
		}
		var src bytes.Buffer
		if err := s.readFile(r.Context(), f, 0, f.GetSize(), &src); err != nil {
			s.httpError(w, r, err)
			return
		}
		out, ctype, err = preview.Render(src.Bytes(), opts, preview.Limits{MaxInputBytes: s.storage.PreviewMaxBytes})
		switch {
		case errors.Is(err, preview.ErrUnsupported), errors.Is(err, preview.ErrTooLarge):
			s.httpError(w, r, domain.Errorf(domain.KindInvalid, "file %q: %v", f.GetId(), err))
			return
		case errors.Is(err, preview.ErrInvalidOption):
			s.httpError(w, r, domain.FieldError("query", "%v", err))
			return
		case err != nil:
			s.httpError(w, r, err)
			return
		}
		sealed, err := s.seal(f.GetProjectId(), purpose, append(append([]byte(ctype), 0), out...))
		if err == nil {
			err = s.reads.CachePreview(f.GetProjectId(), f.GetBlobUid(), key, sealed)
		}
		if err != nil {
			s.logger.WarnContext(r.Context(), "caching a preview", "project", f.GetProjectId(), "file", f.GetId(), "err", err)
		}
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	if hit {
		h.Set(headerPreview, "hit")
	} else {
		h.Set(headerPreview, "miss")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		n, _ := w.Write(out)
		s.meter.Download(f.GetProjectId(), int64(n))
	}
}
