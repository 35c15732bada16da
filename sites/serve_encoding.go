package sites

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/cairn-dev/cairn/domain/headers"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

// encoding is the content coding of a response body.
type encoding uint8

const (
	identity encoding = iota
	encBr             // the manifest's "<path>.br"
	encGz             // the manifest's "<path>.gz"
	encGzip           // gzipped on the fly (and cached)
)

// negotiate picks f's encoding for a request's Accept-Encoding: the
// acceptable one with the highest q-value, brotli on a tie, a precompressed
// gzip over on-the-fly gzip; identity when nothing else is acceptable.
func (s *Server) negotiate(f *fileEntry, ae []string) encoding {
	qBr, qGz := acceptQ(ae)
	best, bestQ := identity, 0.0
	if f.br != nil && qBr > 0 {
		best, bestQ = encBr, qBr
	}
	if qGz > bestQ {
		switch {
		case f.gz != nil:
			best = encGz
		case f.compressible && f.size > gzipMinSize && f.size <= s.opts.MaxCachedFile:
			best = encGzip
		}
	}
	return best
}

// acceptQ returns the q-values an Accept-Encoding header gives brotli and
// gzip ("x-gzip" too; "*" for what is not named), 0 when not acceptable.
// An unparsable q-value counts as 0.
func acceptQ(values []string) (br, gz float64) {
	br, gz, star := -1.0, -1.0, -1.0
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(part, ";")
			name = textproto.TrimString(name)
			q := 1.0
			for params != "" {
				var prm string
				prm, params, _ = strings.Cut(params, ";")
				k, val, _ := strings.Cut(prm, "=")
				if strings.EqualFold(textproto.TrimString(k), "q") {
					f, err := strconv.ParseFloat(textproto.TrimString(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0
					}
					q = f
				}
			}
			switch {
			case strings.EqualFold(name, "br"):
				br = q
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
				gz = max(gz, q)
			case name == "*":
				star = q
			}
		}
	}
	if br < 0 {
		br = max(star, 0)
	}
	if gz < 0 {
		gz = max(star, 0)
	}
	return br, gz
}

// gzipped returns f's content gzipped, computed once and cached (it is only
// asked for cacheable files); empty when gzip does not make it smaller.
func (s *Server) gzipped(ctx context.Context, x *index, f *fileEntry) (*blob, error) {
	if b, ok := s.blobs.get(f.gzKey); ok {
		return b, nil
	}
	return s.flight.do(ctx, f.gzKey, func(ctx context.Context) (*blob, error) {
		if b, ok := s.blobs.get(f.gzKey); ok {
			return b, nil
		}
		src, err := s.loadBytes(ctx, x, f, identity)
		if err != nil {
			return nil, err
		}
		data := src.data
		var buf bytes.Buffer
		buf.Grow(len(data)/3 + 64)
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		_, _ = zw.Write(data)
		_ = zw.Close()
		z := &blob{data: []byte{}}
		if buf.Len() < len(data) {
			z.data = bytes.Clone(buf.Bytes())
		}
		s.blobs.add(f.gzKey, z, int64(len(z.data))+blobOverhead)
		return z, nil
	})
}

// etagMatches reports whether If-None-Match certainly matches etag the way
// http.ServeContent will see it (one value: the tag, weak or strong, or
// "*"), so the response will be a 304 without reading any content.
func etagMatches(inm []string, etag string) bool {
	if len(inm) != 1 {
		return false
	}
	v := textproto.TrimString(inm[0])
	return v == etag || v == "*" || len(v) == len(etag)+2 && v[:2] == "W/" && v[2:] == etag
}

// matchRedirect finds the first redirect rule for the request path p (clean
// being p without a trailing slash): an exact "from" (trailing slash
// ignored), or "from" ending in "/*" for that directory and everything
// under it, whose remainder replaces ":splat" in "to". A "to" that is a
// local path is made relative to base; the request's query is kept unless
// "to" has its own.
func matchRedirect(rules []*eventsv1.Redirect, p, clean, base, rawQuery string) (loc string, code int, ok bool) {
	for _, rd := range rules {
		from := rd.GetFrom()
		var splat string
		if dir, found := strings.CutSuffix(from, "/*"); found {
			switch {
			case len(p) > len(dir) && strings.HasPrefix(p, dir) && p[len(dir)] == '/':
				splat = p[len(dir)+1:]
			case clean == dir:
			default:
				continue
			}
		} else if from = strings.TrimSuffix(from, "/"); clean != from && !(from == "" && clean == "/") {
			continue
		}
		to := rd.GetTo()
		if strings.Contains(to, ":splat") {
			to = strings.ReplaceAll(to, ":splat", (&url.URL{Path: splat}).EscapedPath())
		}
		if strings.HasPrefix(to, "/") && !strings.HasPrefix(to, "//") {
			to = (&url.URL{Path: base}).EscapedPath() + to
		}
		if rawQuery != "" && !strings.Contains(to, "?") {
			to += "?" + rawQuery
		}
		code = int(rd.GetStatus())
		switch code {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			code = http.StatusMovedPermanently
		}
		return to, code, true
	}
	return "", 0, false
}

// protectedHeaders are never set by a site's header rules: they frame the
// response, and a wrong value breaks it rather than decorating it.
var protectedHeaders = map[string]bool{
	"Content-Length": true, "Content-Encoding": true, "Content-Range": true,
	"Transfer-Encoding": true, "Connection": true, "Keep-Alive": true,
	"Upgrade": true, "Trailer": true, "Te": true, "Location": true,
}

// applyRules sets the site's header rules matching the request path p (or
// clean, p without its trailing slash); later rules win.
func applyRules(h http.Header, rules []*eventsv1.HeaderRule, p, clean string) {
	for _, hr := range rules {
		pat := hr.GetPattern()
		if !ruleMatches(pat, p) && (p == clean || !ruleMatches(pat, clean)) {
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(hr.GetName())
		// Rules stored before headers.Check refused them are not served.
		if name == "" || protectedHeaders[name] || headers.Check("", name, hr.GetValue()) != nil {
			continue
		}
		h[name] = []string{hr.GetValue()}
	}
}

// ruleMatches: a pattern ending in "/*" matches that directory and
// everything under it; any other is a path.Match pattern.
func ruleMatches(pattern, p string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(p, dir) && (len(p) == len(dir) || p[len(dir)] == '/')
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

func itoa(n int) string { return strconv.Itoa(n) }
