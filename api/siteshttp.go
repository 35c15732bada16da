package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/api/hosts"
	"github.com/cairn-dev/cairn/api/ratelimit"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/site"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/sites"
	"github.com/cairn-dev/cairn/sites/archive"
)

// MaxArchiveBytes bounds an uploaded site archive (compressed).
const MaxArchiveBytes = 100 << 20

// mountSites adds the plain HTTP routes of sites: serving, and uploads.
func (s *Server) mountSites(mux *http.ServeMux) {
	// No project's content is served on the API's host: these paths, where
	// sites used to be, redirect to the sites' own hosts.
	mux.HandleFunc(sitesPath+"{project}/{site}", func(w http.ResponseWriter, r *http.Request) {
		redirectToHost(w, r, s.hosts.SiteURL(r.PathValue("project"), r.PathValue("site")), "")
	})
	mux.HandleFunc(sitesPath+"{project}/{site}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		redirectToHost(w, r, s.hosts.SiteURL(r.PathValue("project"), r.PathValue("site")), r.PathValue("path"))
	})
	mux.HandleFunc(previewsPath+"{project}/{site}/{deployment}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		redirectToHost(w, r, s.hosts.PreviewURL(r.PathValue("project"), r.PathValue("site"), r.PathValue("deployment")), r.PathValue("path"))
	})
	mux.HandleFunc("POST /v1/sites/{project}/{site}/deployments", s.uploadArchive)
	mux.HandleFunc("PUT /v1/sites/{project}/blobs/{sha256}", s.uploadBlob)
}

// serveSiteHost serves a site's host: its production deployment, or one
// deployment on a preview host.
func (s *Server) serveSiteHost(w http.ResponseWriter, r *http.Request, t hosts.Target) {
	if s.siteFiles == nil {
		http.Error(w, "no such site, or nothing deployed", http.StatusNotFound)
		return
	}
	st, err := s.reads.Site(t.Project, t.Site)
	if err != nil {
		http.Error(w, "no such site, or nothing deployed", http.StatusNotFound)
		return
	}
	dep := t.Deployment
	if t.Kind == hosts.Site {
		dep = st.GetActiveDeploymentId()
	}
	if dep == "" {
		http.Error(w, "no such site, or nothing deployed", http.StatusNotFound)
		return
	}
	s.serveDeploymentPath(w, r, st, dep, "", r.URL.Path)
}

func (s *Server) serveDeploymentPath(w http.ResponseWriter, r *http.Request, st *eventsv1.Site, depID, base, p string) {
	// The site (read fresh) says whether the deployment still exists; its
	// manifest never changes, so a decoded copy is cached.
	if !slices.Contains(st.GetDeploymentIds(), depID) {
		http.Error(w, "no such deployment", http.StatusNotFound)
		return
	}
	d, err := s.manifests.get(st.GetProjectId(), st.GetId(), depID, s.reads.Deployment)
	if err != nil {
		http.Error(w, "no such deployment", http.StatusNotFound)
		return
	}
	cw := &countingResponse{ResponseWriter: w}
	s.siteFiles.Serve(cw, r, st.GetSettings(), d, base, p)
	s.meter.Site(st.GetProjectId(), cw.n)
}

// manifestCache keeps decoded deployments: a 2,000-file manifest costs more
// to read and decode than serving a small file.
type manifestCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*eventsv1.Deployment
}

func (c *manifestCache) get(project, site, id string, load func(project, site, id string) (*eventsv1.Deployment, error)) (*eventsv1.Deployment, error) {
	key := project + "/" + site + "/" + id
	c.mu.Lock()
	d, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := load(project, site, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*eventsv1.Deployment{}
	}
	if len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry: cheap and bounded
			delete(c.m, k)
			break
		}
	}
	c.m[key] = d
	return d, nil
}

// authorizeHTTP authenticates a plain HTTP request and checks it may act on
// project with scope.
func (s *Server) authorizeHTTP(r *http.Request, project string, scope access.Scope) (access.Principal, error) {
	if err := s.checkOrigin(r.Context(), project); err != nil {
		return access.Principal{}, err
	}
	p, err := s.auth.authenticate(r.Header.Get("Authorization"))
	if err != nil {
		return p, err
	}
	noteCaller(r.Context(), p)
	if pin := pinnedProject(r.Context()); pin != "" && p.Project != pin {
		return p, pinnedRefusal(pin)
	}
	if err := access.Authorize(p, project, scope, s.now()); err != nil {
		return p, err
	}
	if _, err := s.reads.Project(project); err != nil {
		return p, notFound(err, "project")
	}
	return p.In(project), nil
}

// uploadBlob stores one content-addressed site file: PUT the bytes whose
// SHA-256 is in the path.
func (s *Server) uploadBlob(w http.ResponseWriter, r *http.Request) {
	project, sha := r.PathValue("project"), r.PathValue("sha256")
	if _, err := s.authorizeHTTP(r, project, access.SitesWrite); err != nil {
		s.httpError(w, r, err)
		return
	}
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		s.httpError(w, r, domain.FieldError("sha256", "must be 64 lower-case hex characters"))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sites.MaxBlobSize))
	if err == nil {
		err = s.putSiteBlob(r.Context(), project, sha, data)
	}
	switch {
	case errors.Is(err, sites.ErrHashMismatch):
		s.httpError(w, r, domain.FieldError("body", "%v", err))
	case errors.Is(err, sites.ErrBlobTooLarge), isMaxBytes(err):
		s.httpError(w, r, domain.Errorf(domain.KindResourceExhausted, "a site file is at most %d bytes", sites.MaxBlobSize))
	case err != nil:
		s.httpError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// uploadArchive deploys a .tar.gz or .zip of a build output:
// POST /v1/sites/<project>/<site>/deployments[?activate=true].
func (s *Server) uploadArchive(w http.ResponseWriter, r *http.Request) {
	project, id := r.PathValue("project"), r.PathValue("site")
	p, err := s.authorizeHTTP(r, project, access.SitesWrite)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	meta, err := writeMeta(p, "POST /v1/sites/deployments", r.Header.Get)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	activate, _ := strconv.ParseBool(r.URL.Query().Get("activate"))
	ctx := r.Context()
	h := &sitesHandler{s}
	if _, err := s.reads.Site(project, id); err != nil {
		s.httpError(w, r, notFound(err, "site"))
		return
	}
	d := &eventsv1.Deployment{Id: strings.ToLower(s.log.NewID()), ProjectId: project, SiteId: id}
	put := func(p string, rd io.Reader) error {
		data, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		if err := s.putSiteBlob(ctx, project, sha, data); err != nil {
			return err
		}
		d.Files = append(d.Files, &eventsv1.SiteFile{Path: p, Sha256: sha, Size: int64(len(data)), ContentType: sites.ContentType(p, data)})
		d.TotalSize += int64(len(data))
		return nil
	}
	// fail records a refusal with its reason, so the site's deployment list
	// shows it; nothing of it is served.
	fail := func(err error) {
		de, ok := errors.AsType[*domain.Error](err)
		if ok && ctx.Err() == nil && de.Kind != domain.KindUnavailable { // unavailable: it may have been stored
			if _, _, ferr := h.writeSiteWith(ctx, meta, project, id, func(site.State) site.Command {
				return site.Fail{DeploymentID: d.GetId(), Reason: de.Error(), Now: s.log.Now()}
			}); ferr != nil {
				s.logger.WarnContext(ctx, "recording a failed deployment", "site", id, "err", ferr)
			}
			de = &domain.Error{Kind: de.Kind, Field: de.Field, Message: "deployment " + d.GetId() + " failed: " + de.Message}
			err = de
		}
		s.httpError(w, r, err)
	}
	if err := extract(ctx, http.MaxBytesReader(w, r.Body, MaxArchiveBytes), put); err != nil {
		fail(err)
		return
	}
	res, seq, err := h.deploy(ctx, meta, d, activate)
	if err != nil {
		fail(err) // the manifest refused (too many files, …)
		return
	}
	w.Header().Set(headerSeq, strconv.FormatUint(seq, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	b, _ := protojson.Marshal(res.GetDeployment())
	_, _ = w.Write(b)
}

// extract reads a .tar.gz (streamed) or .zip (spooled to a temporary file:
// its index is at the end) and hands every file to put.
func extract(ctx context.Context, body io.Reader, put func(string, io.Reader) error) error {
	br := bufio.NewReader(body)
	head, _ := br.Peek(4)
	format, err := archive.Detect(head)
	if err != nil {
		return domain.FieldError("body", "send a .tar.gz or .zip archive")
	}
	var lim archive.Limits
	if format == archive.TarGz {
		return archiveErr(archive.ExtractTarGz(ctx, br, lim, put))
	}
	f, err := os.CreateTemp("", "cairn-site-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, br)
	if err != nil {
		if isMaxBytes(err) {
			return domain.Errorf(domain.KindResourceExhausted, "an archive is at most %d bytes", MaxArchiveBytes)
		}
		return err
	}
	return archiveErr(archive.ExtractZip(ctx, f, n, lim, put))
}

// archiveErr turns the extractor's refusals into errors naming the entry.
func archiveErr(err error) error {
	var ae *archive.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return domain.FieldError("body", "%v", ae)
	case isMaxBytes(err):
		return domain.Errorf(domain.KindResourceExhausted, "an archive is at most %d bytes", MaxArchiveBytes)
	}
	return err
}

func isMaxBytes(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// httpStatus maps Connect codes to HTTP statuses for plain routes.
var httpStatus = map[connect.Code]int{
	connect.CodeInvalidArgument:    http.StatusBadRequest,
	connect.CodeNotFound:           http.StatusNotFound,
	connect.CodeAlreadyExists:      http.StatusConflict,
	connect.CodeAborted:            http.StatusConflict,
	connect.CodePermissionDenied:   http.StatusForbidden,
	connect.CodeUnauthenticated:    http.StatusUnauthorized,
	connect.CodeFailedPrecondition: http.StatusPreconditionFailed,
	connect.CodeResourceExhausted:  http.StatusRequestEntityTooLarge,
	connect.CodeUnavailable:        http.StatusServiceUnavailable,
	connect.CodeCanceled:           499,
	connect.CodeDeadlineExceeded:   http.StatusGatewayTimeout,
}

// httpError answers a plain HTTP request with the same classification and
// message an RPC would get, as JSON {"code","message"}.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	ce := toConnect(r.Context(), s.logger, r.Method+" "+r.URL.Path, err).(*connect.Error)
	status, ok := httpStatus[ce.Code()]
	if !ok {
		status = http.StatusInternalServerError
	}
	if d, ok := ratelimit.RetryDelay(ce); ok {
		// A rate limit, not a quota (413): the same request passes later.
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(d)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": ce.Code().String(), "message": ce.Message()})
}
