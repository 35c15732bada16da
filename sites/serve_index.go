package sites

import (
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// indexKey names a deployment; ids are only unique within a project as far
// as this package is concerned, so the project is part of every key.
type indexKey struct{ project, id string }

// index is a deployment's manifest prepared for serving: every lookup a
// request makes is a map lookup here, with no allocation.
type index struct {
	project, id string
	modTime     time.Time
	// lastModified is modTime as a header value; nil when unknown.
	lastModified []string
	files        map[string]*fileEntry // manifest path → file
	dirs         map[string]*fileEntry // "docs" → docs/index.html; "" → index.html
	pages        map[string]*fileEntry // "about" → about.html (pretty URLs)
}

// fileEntry is one manifest file with its response headers precomputed.
type fileEntry struct {
	path, sha string
	size      int64
	// key and gzKey name the content and its gzipped form in the blob
	// cache (project-scoped: a project only ever reads its own objects).
	key, gzKey   string
	ctype        []string // nil: sniff the content
	etag         []string
	etagBr       []string
	etagGz       []string
	cacheControl []string
	compressible bool       // worth gzipping on the fly
	br, gz       *fileEntry // precompressed variants in the manifest
}

// index returns d's index, building it on first use.
func (s *Server) index(d *eventsv1.Deployment) *index {
	k := indexKey{d.GetProjectId(), d.GetId()}
	if k.id != "" {
		if x, ok := s.indexes.get(k); ok {
			return x
		}
	}
	x := buildIndex(d)
	if k.id != "" {
		s.indexes.add(k, x, int64(len(d.GetFiles()))+1)
	}
	return x
}

func buildIndex(d *eventsv1.Deployment) *index {
	n := len(d.GetFiles())
	x := &index{
		project: d.GetProjectId(),
		id:      d.GetId(),
		files:   make(map[string]*fileEntry, n),
		dirs:    make(map[string]*fileEntry),
		pages:   make(map[string]*fileEntry),
	}
	if d.GetCreatedAt() != nil {
		x.modTime = d.GetCreatedAt().AsTime()
		if !x.modTime.IsZero() && !x.modTime.Equal(time.Unix(0, 0)) {
			x.lastModified = []string{x.modTime.UTC().Format(http.TimeFormat)}
		}
	}
	for _, sf := range d.GetFiles() {
		p := sf.GetPath()
		if !manifestPath(p) {
			continue // the domain rejects these; never serve one anyway
		}
		f := newFileEntry(x.project, sf)
		x.files[p] = f
		switch {
		case p == "index.html":
			x.dirs[""] = f
		case strings.HasSuffix(p, "/index.html"):
			x.dirs[strings.TrimSuffix(p, "/index.html")] = f
		}
		if strings.HasSuffix(p, ".html") {
			x.pages[strings.TrimSuffix(p, ".html")] = f
		}
	}
	for p, f := range x.files {
		var base *fileEntry
		switch {
		case strings.HasSuffix(p, ".br"):
			if base = x.files[strings.TrimSuffix(p, ".br")]; base != nil && precompressible(base) {
				base.br = f
			}
		case strings.HasSuffix(p, ".gz"):
			if base = x.files[strings.TrimSuffix(p, ".gz")]; base != nil && precompressible(base) {
				base.gz = f
			}
		}
	}
	return x
}

// manifestPath reports whether p is a clean relative path, as the domain
// requires of manifest paths.
func manifestPath(p string) bool {
	return p != "" && p[0] != '/' && p != "." && p != ".." && !strings.HasPrefix(p, "../") &&
		path.Clean(p) == p && !strings.ContainsAny(p, "\\\x00")
}

func newFileEntry(project string, sf *eventsv1.SiteFile) *fileEntry {
	p, sha := sf.GetPath(), sf.GetSha256()
	f := &fileEntry{
		path: p,
		sha:  sha,
		size: sf.GetSize(),
		key:  project + "\x00" + sha,
	}
	f.gzKey = f.key + "\x00gz"
	tag := sha
	if len(tag) > 32 {
		tag = tag[:32]
	}
	f.etag = []string{`"` + tag + `"`}
	f.etagBr = []string{`"` + tag + `-br"`}
	f.etagGz = []string{`"` + tag + `-gz"`}

	ct := sf.GetContentType()
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(p))
	}
	if ct != "" {
		f.ctype = []string{ct}
	}
	mt := mediaType(ct)
	f.compressible = compressibleType(mt)
	switch {
	case mt == "text/html" || mt == "application/xhtml+xml" || ct == "" && (strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".htm")):
		f.cacheControl = hdrNoCache
	case hashedName(p):
		f.cacheControl = hdrImmutable
	default:
		f.cacheControl = hdrHour
	}
	return f
}

// mediaType is ct's lower-case type/subtype without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// compressibleType reports whether a media type is text worth gzipping:
// text/*, JavaScript, JSON, XML, SVG. (wasm and images are not compressed
// on the fly; wasm may still come precompressed.)
func compressibleType(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/javascript", "application/x-javascript", "application/ecmascript",
		"application/json", "application/xml", "application/wasm-text":
		return true
	}
	return false
}

// precompressible reports whether a manifest's "<path>.br"/"<path>.gz" is
// taken as an encoding of path: for text and wasm only, so a download like
// "data.tar" next to "data.tar.gz" is never mislabelled.
func precompressible(f *fileEntry) bool {
	if f.compressible {
		return true
	}
	var ct string
	if f.ctype != nil {
		ct = f.ctype[0]
	}
	return mediaType(ct) == "application/wasm"
}

// hashedName reports whether a path names a build output whose name carries
// a content hash ("app.3f2a9c1b.js", "index-BxT2k9aQ.js",
// "chunks/4f1e2a3b9c8d7e6f/x.js"), so it can be cached forever: a new build
// gets a new name. A hash is a token (between '/', '.', '-', '_', '~', '+',
// '@') of at least 8 hex characters with a digit and a letter, or of at least
// 8 letters and digits with a digit, a letter and no run of four lower-case
// letters (which words have and hashes rarely do); or, for Vite's
// base64url hashes that may contain '-' or '_', the last 8 characters of the
// name before its extension after a '-' or '.'. A hash without a digit is
// missed: the file is then cached for an hour, the safe direction.
func hashedName(p string) bool {
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if p == "" {
			// The file name: its extension is not a token.
			if i := strings.LastIndexByte(seg, '.'); i > 0 {
				seg = seg[:i]
			}
			if n := len(seg); n >= 10 && (seg[n-9] == '-' || seg[n-9] == '.') && hashToken(seg[n-8:], true) {
				return true
			}
		}
		for seg != "" {
			i := strings.IndexAny(seg, ".-_~+@")
			tok := seg
			if i >= 0 {
				tok, seg = seg[:i], seg[i+1:]
			} else {
				seg = ""
			}
			if hashToken(tok, false) {
				return true
			}
		}
	}
	return false
}

func hashToken(t string, base64url bool) bool {
	if len(t) < 8 {
		return false
	}
	hex, digit, letter := true, false, false
	lowerRun := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
			lowerRun = 0
		case c >= 'a' && c <= 'z':
			letter = true
			hex = hex && c <= 'f'
			lowerRun++
			if lowerRun >= 4 && !hex {
				return false
			}
		case c >= 'A' && c <= 'Z':
			letter = true
			hex = false
			lowerRun = 0
		case base64url && (c == '-' || c == '_'):
			hex = false
			lowerRun = 0
		default:
			return false
		}
	}
	return digit && letter
}
