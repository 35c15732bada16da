// Package sites serves deployed static sites. Serving resolves a request
// path against a deployment's manifest (redirects, trailing-slash policy,
// directory indexes, pretty URLs, SPA fallback, custom 404 page) and answers
// with the file's content, loaded by its SHA-256 from the project's object
// store and kept in a bounded in-memory cache, with the headers a production
// static host sends (content type, ETag, Last-Modified, conditional and
// range requests, precompressed or on-the-fly compressed variants, cache
// lifetimes by kind of file, the site's own header rules).
//
// It never reads a file by name (large cached files are kept in unnamed
// files, see cachedFile), and it never serves anything outside a
// deployment's manifest: a request path is cleaned and then only ever used
// as a key into a map built from the manifest, never as a file name.
package sites

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// Blobs loads file content by its SHA-256 (lower-case hex) from a project's
// object store.
type Blobs interface {
	// Load returns the whole content of the object; ErrBlobNotFound (or an
	// error wrapping it) when the project holds no such object. The Server
	// keeps the returned slice in its cache and shares it between requests,
	// so it must not be modified or reused afterwards. The Server checks the
	// content against the manifest's size and SHA-256.
	Load(ctx context.Context, project, sha256 string) ([]byte, error)
}

// ErrBlobNotFound is returned by Blobs.Load for a missing object.
var ErrBlobNotFound = errors.New("sites: blob not found")

// errCorrupt reports an object whose content does not match the manifest.
var errCorrupt = errors.New("sites: object content does not match its manifest entry")

// ServerOptions tunes a Server; zero values mean the defaults.
type ServerOptions struct {
	// CacheBytes bounds the in-memory cache of file contents (and of their
	// on-the-fly gzipped forms); default 64 MiB.
	CacheBytes int64
	// MaxCachedFile is the largest file kept in the cache; larger files are
	// loaded for each request and not compressed on the fly. Default 4 MiB.
	MaxCachedFile int64
	// SendfileMin is the size from which a cached file is kept in an
	// unnamed file in FileDir and sent with sendfile rather than written
	// from a byte slice (which costs a copy through user space); default
	// 128 KiB, -1 never. Such files count in CacheBytes all the same.
	SendfileMin int64
	// FileDir is where those unnamed files are made; default
	// os.TempDir() ($TMPDIR).
	FileDir string
	// IndexEntries bounds the path indexes kept for recently served
	// deployments, counted in manifest entries; default 100,000.
	IndexEntries int64
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock (for throttling repeated error logs); default
	// time.Now.
	Now func() time.Time
}

// Defaults of ServerOptions.
const (
	DefaultCacheBytes    = 64 << 20
	DefaultMaxCachedFile = 4 << 20
	DefaultIndexEntries  = 100_000
	// By BenchmarkServeVsFileServer: below this, one Write of the cached
	// bytes costs less than sendfile's extra system calls.
	DefaultSendfileMin = 128 << 10
)

// gzipMinSize is the size above which compressible files are gzipped on the
// fly for clients that accept it.
const gzipMinSize = 1 << 10

// blobOverhead is added to each cached blob's cost, so many tiny files
// cannot hold far more memory than the bound says.
const blobOverhead = 128

// Server serves static sites from deployments' manifests. It is safe for
// concurrent use.
type Server struct {
	src     Blobs
	opts    ServerOptions
	log     *slog.Logger
	blobs   *lru[string, *blob]
	indexes *lru[indexKey, *index]
	flight  flight

	logMu      sync.Mutex
	lastLogged map[string]time.Time
}

// NewServer returns a Server loading file contents from blobs.
func NewServer(blobs Blobs, opts ServerOptions) *Server {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.MaxCachedFile <= 0 {
		opts.MaxCachedFile = DefaultMaxCachedFile
	}
	if opts.MaxCachedFile > opts.CacheBytes {
		opts.MaxCachedFile = opts.CacheBytes
	}
	if opts.IndexEntries <= 0 {
		opts.IndexEntries = DefaultIndexEntries
	}
	if opts.SendfileMin == 0 {
		opts.SendfileMin = DefaultSendfileMin
	}
	if opts.FileDir == "" {
		opts.FileDir = os.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cache := newLRU[string, *blob](opts.CacheBytes)
	cache.evicted = (*blob).drop
	return &Server{
		src:        blobs,
		opts:       opts,
		log:        opts.Logger,
		blobs:      cache,
		indexes:    newLRU[indexKey, *index](opts.IndexEntries),
		lastLogged: make(map[string]time.Time),
	}
}

// Serve answers r for the deployment d of a site with settings set. p is
// the request path within the site ("/", "/about", "/assets/app.js"),
// already stripped of any /_sites/<project>/<site> prefix and
// percent-decoded; base is that prefix ("" for host-based serving), so
// redirects point at the right URL.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, set *eventsv1.SiteSettings, d *eventsv1.Deployment, base, p string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = hdrAllow
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}

	// Canonical form: rooted, cleaned ("//", ".", ".." resolved without
	// ever climbing above the root), one trailing slash kept when asked.
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	clean := path.Clean(p)
	slash := clean != "/" && p[len(p)-1] == '/'
	if !(p == clean || slash && len(p) == len(clean)+1 && p[:len(clean)] == clean) {
		target := clean
		if slash {
			target += "/"
		}
		s.redirect(w, r, set, p, clean, localURL(base, target, r.URL.RawQuery), http.StatusPermanentRedirect)
		return
	}

	if loc, code, ok := matchRedirect(set.GetRedirects(), p, clean, base, r.URL.RawQuery); ok {
		s.redirect(w, r, set, p, clean, loc, code)
		return
	}

	idx := s.index(d)
	f, target := idx.resolve(set.GetTrailingSlash(), clean, slash)
	switch {
	case target != "":
		s.redirect(w, r, set, p, clean, localURL(base, target, r.URL.RawQuery), http.StatusPermanentRedirect)
	case f != nil:
		s.serveFile(w, r, set, idx, f, p, clean)
	case set.GetSpaFallback() && routeLike(clean) && idx.dirs[""] != nil:
		s.serveFile(w, r, set, idx, idx.dirs[""], p, clean)
	case !set.GetSpaFallback() && set.GetNotFoundPage() != "" && idx.files[strings.TrimPrefix(set.GetNotFoundPage(), "/")] != nil:
		s.serveNotFoundPage(w, r, set, idx, idx.files[strings.TrimPrefix(set.GetNotFoundPage(), "/")], p, clean)
	default:
		h := w.Header()
		h["Cache-Control"] = hdrNoCache
		applyRules(h, set.GetHeaders(), p, clean)
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

// resolve finds what serves the clean path: a file, or a canonical path to
// redirect to (per the trailing-slash policy), or neither (a miss).
func (x *index) resolve(ts eventsv1.TrailingSlash, clean string, slash bool) (f *fileEntry, redirect string) {
	rel := clean[1:]
	if rel == "" {
		return x.dirs[""], ""
	}
	if !slash {
		if f := x.files[rel]; f != nil {
			return f, ""
		}
		if f := x.dirs[rel]; f != nil {
			if ts == eventsv1.TrailingSlash_TRAILING_SLASH_ADD {
				return nil, clean + "/"
			}
			return f, ""
		}
		return x.pages[rel], ""
	}
	if f := x.dirs[rel]; f != nil {
		if ts == eventsv1.TrailingSlash_TRAILING_SLASH_REMOVE {
			return nil, clean
		}
		return f, ""
	}
	if f := x.pages[rel]; f != nil {
		if ts != eventsv1.TrailingSlash_TRAILING_SLASH_UNSPECIFIED {
			// A page's canonical URL has no trailing slash.
			return nil, clean
		}
		return f, ""
	}
	if x.files[rel] != nil {
		// "/app.js/" names a file, not a directory.
		return nil, clean
	}
	return nil, ""
}

// routeLike reports whether a missed path looks like a client-side route
// (no extension, or .html), which an SPA answers with its index.html; a
// missed asset ("/assets/x.js") gets a 404 instead of HTML.
func routeLike(clean string) bool {
	ext := path.Ext(clean[strings.LastIndexByte(clean, '/')+1:])
	return ext == "" || ext == ".html" || ext == ".htm"
}

// localURL is the escaped URL of a path within the site, with the query.
func localURL(base, p, rawQuery string) string {
	u := (&url.URL{Path: base + p}).EscapedPath()
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

func (s *Server) redirect(w http.ResponseWriter, r *http.Request, set *eventsv1.SiteSettings, p, clean, loc string, code int) {
	h := w.Header()
	h.Set("Location", loc)
	applyRules(h, set.GetHeaders(), p, clean)
	w.WriteHeader(code)
}

// serveFile answers with f (status 200, or 206/304/412/416 from the
// request's conditions and range), negotiating its encoding.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, set *eventsv1.SiteSettings, x *index, f *fileEntry, p, clean string) {
	h := w.Header()
	_, ranged := r.Header["Range"]
	enc := identity
	var ae []string
	if f.br != nil || f.gz != nil || f.compressible && f.size > gzipMinSize && f.size <= s.opts.MaxCachedFile {
		h["Vary"] = hdrVaryAE
		ae = r.Header["Accept-Encoding"]
	}
	if len(ae) > 0 && !ranged {
		enc = s.negotiate(f, ae)
	}

	etag := f.etag
	switch enc {
	case encBr:
		etag = f.etagBr
	case encGz, encGzip:
		etag = f.etagGz
	}

	// A revalidation that will be answered 304 needs no content: do not
	// load (a cold node, or a file too large to cache) just to drop it.
	var data *blob
	if !etagMatches(r.Header["If-None-Match"], etag[0]) {
		var err error
		data, err = s.content(r.Context(), x, f, enc)
		if err == nil && enc == encGzip && data.size() == 0 {
			// Not worth compressing: serve identity.
			enc, etag = identity, f.etag
			data, err = s.content(r.Context(), x, f, identity)
		}
		if err != nil {
			s.fail(w, r, x, f, err)
			return
		}
	}
	// A large cached file is sent from its cachedFile by a handle of its
	// own; one evicted since the lookup is served from its bytes.
	var file *os.File
	if data != nil && data.kept != nil {
		var err error
		if file, err = data.kept.open(); err == nil {
			defer data.kept.release(file)
		} else if data, err = s.loadBytes(r.Context(), x, f, enc); err != nil {
			s.fail(w, r, x, f, err)
			return
		}
	}

	ctype := f.ctype
	if ctype == nil {
		var head []byte
		if enc == identity { // cannot sniff encoded bytes; 304s drop the type anyway
			head = data.head(file)
		}
		ctype = []string{http.DetectContentType(head)}
	}
	h["Content-Type"] = ctype
	h["X-Content-Type-Options"] = hdrNosniff
	h["Etag"] = etag
	h["Cache-Control"] = f.cacheControl
	switch enc {
	case encBr:
		h["Content-Encoding"] = hdrBr
	case encGz, encGzip:
		h["Content-Encoding"] = hdrGzip
	}
	size := data.size()
	if enc != identity {
		// ServeContent leaves Content-Length to the caller when the body
		// is encoded (it assumes an encoding writer); ours is exact.
		h["Content-Length"] = []string{itoa(int(size))}
	}
	applyRules(h, set.GetHeaders(), p, clean)
	if conditional(r.Header) {
		var content io.ReadSeeker = file
		if file == nil {
			content = bytes.NewReader(data.bytes())
		}
		// Over a file, ServeContent's copy is a sendfile too.
		http.ServeContent(w, normalizeRange(r, size), "", x.modTime, content)
		return
	}
	// The common case, a plain full response: what ServeContent would send,
	// written in one Write (ServeContent copies through a LimitedReader,
	// which costs a 32 KiB copy loop on large files), or handed to the
	// kernel (sendfile) from the cachedFile.
	if x.lastModified != nil {
		h["Last-Modified"] = x.lastModified
	}
	h["Accept-Ranges"] = hdrBytes
	h["Content-Length"] = []string{itoa(int(size))}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if file != nil {
		_, _ = copyFile(w, file, size)
		return
	}
	_, _ = w.Write(data.bytes())
}

// conditional reports whether a request has preconditions or a range, which
// http.ServeContent evaluates.
func conditional(h http.Header) bool {
	for _, k := range conditionalHeaders {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

var conditionalHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "Range"}

// serveNotFoundPage answers with the site's 404 page, status 404.
func (s *Server) serveNotFoundPage(w http.ResponseWriter, r *http.Request, set *eventsv1.SiteSettings, x *index, f *fileEntry, p, clean string) {
	data, err := s.loadBytes(r.Context(), x, f, identity)
	if err != nil {
		s.fail(w, r, x, f, err)
		return
	}
	h := w.Header()
	ctype := f.ctype
	if ctype == nil {
		ctype = []string{http.DetectContentType(data.data)}
	}
	h["Content-Type"] = ctype
	h["X-Content-Type-Options"] = hdrNosniff
	h["Cache-Control"] = hdrNoCache
	h["Content-Length"] = []string{itoa(len(data.data))}
	applyRules(h, set.GetHeaders(), p, clean)
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data.data)
	}
}

// content returns f's bytes in encoding enc: the file itself, its
// precompressed variant, or its on-the-fly gzipped form (empty when
// compressing does not make it smaller).
func (s *Server) content(ctx context.Context, x *index, f *fileEntry, enc encoding) (*blob, error) {
	switch enc {
	case encBr:
		return s.load(ctx, x, f.br)
	case encGz:
		return s.load(ctx, x, f.gz)
	case encGzip:
		return s.gzipped(ctx, x, f)
	}
	return s.load(ctx, x, f)
}

// loadBytes is content with the bytes in hand (copied out of a
// cachedFile): for the paths that need them.
func (s *Server) loadBytes(ctx context.Context, x *index, f *fileEntry, enc encoding) (*blob, error) {
	b, err := s.content(ctx, x, f, enc)
	if err != nil || b.kept == nil {
		return b, err
	}
	data, err := b.kept.readAll()
	if errors.Is(err, errCachedFileClosed) {
		// Evicted since the lookup: load it again.
		return s.loadBytes(ctx, x, f, enc)
	}
	if err != nil {
		return nil, fmt.Errorf("read cached file: %w", err)
	}
	return &blob{data: data}, nil
}

// load returns f's content from the cache, or from the object store (one
// load for all concurrent requests), verified against the manifest.
func (s *Server) load(ctx context.Context, x *index, f *fileEntry) (*blob, error) {
	if b, ok := s.blobs.get(f.key); ok {
		return b, nil
	}
	return s.flight.do(ctx, f.key, func(ctx context.Context) (*blob, error) {
		if b, ok := s.blobs.get(f.key); ok {
			return b, nil // loaded while this caller was getting here
		}
		b, err := s.src.Load(ctx, x.project, f.sha)
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != f.size {
			return nil, fmt.Errorf("%w: size %d, manifest says %d", errCorrupt, len(b), f.size)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.sha {
			return nil, fmt.Errorf("%w: sha256 %x", errCorrupt, sum)
		}
		out := &blob{data: b}
		if int64(len(b)) <= s.opts.MaxCachedFile {
			if s.opts.SendfileMin >= 0 && int64(len(b)) >= s.opts.SendfileMin {
				if m, err := newCachedFile(s.opts.FileDir, b); err == nil {
					// The cache holds the file instead of the bytes, so a
					// large file is not held twice.
					out = &blob{kept: m}
				} else if s.shouldLog("cachedfile") {
					s.log.Warn("sites: large files are served from memory by copying", "err", err)
				}
			}
			s.blobs.add(f.key, out, int64(len(b))+blobOverhead)
		}
		return out, nil
	})
}

// fail answers a request whose content could not be loaded.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, x *index, f *fileEntry, err error) {
	h := w.Header()
	h["Cache-Control"] = hdrNoStore
	attrs := []any{"project", x.project, "deployment", x.id, "path", f.path, "sha256", f.sha, "err", err}
	switch {
	case errors.Is(err, ErrBlobNotFound):
		if s.shouldLog(f.key) {
			s.log.Error("sites: deployment references a missing object (a bug: a live deployment's objects must never be deleted)", attrs...)
		}
		http.Error(w, "502 bad gateway: the deployment references a missing file", http.StatusBadGateway)
	case errors.Is(err, errCorrupt):
		if s.shouldLog(f.key) {
			s.log.Error("sites: object store returned content not matching the manifest", attrs...)
		}
		http.Error(w, "502 bad gateway: stored file is corrupt", http.StatusBadGateway)
	case r.Context().Err() != nil:
		// The client went away; nobody reads this.
		http.Error(w, "503 service unavailable", http.StatusServiceUnavailable)
	default:
		if s.shouldLog(f.key) {
			s.log.Warn("sites: cannot load a file from the object store", attrs...)
		}
		h.Set("Retry-After", "1")
		http.Error(w, "503 service unavailable: cannot load the file", http.StatusServiceUnavailable)
	}
}

// shouldLog throttles error logs to one a minute per object, so a broken
// deployment under traffic does not flood the log.
func (s *Server) shouldLog(key string) bool {
	now := s.opts.Now()
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if t, ok := s.lastLogged[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(s.lastLogged) >= 1024 {
		clear(s.lastLogged)
	}
	s.lastLogged[key] = now
	return true
}

// Preallocated header values (each slice has cap 1, so an Add by a caller
// copies instead of writing into the shared array).
var (
	hdrAllow     = []string{"GET, HEAD"}
	hdrNosniff   = []string{"nosniff"}
	hdrNoCache   = []string{"no-cache"}
	hdrNoStore   = []string{"no-store"}
	hdrImmutable = []string{"public, max-age=31536000, immutable"}
	hdrHour      = []string{"public, max-age=3600"}
	hdrVaryAE    = []string{"Accept-Encoding"}
	hdrBr        = []string{"br"}
	hdrGzip      = []string{"gzip"}
	hdrBytes     = []string{"bytes"}
)
