package filestore

import (
	"bytes"
	"mime"
	"net/http"
	"path"
	"strings"
)

// sniffLen is how much of a file content sniffing looks at (the WHATWG
// algorithm's and http.DetectContentType's limit).
const sniffLen = 512

// Sniff returns the MIME type of a file from its first bytes (up to 512
// are looked at) and its name. A client-declared type is never trusted:
// it is what an attacker would set to have script served from the API
// origin. The bytes decide; the name's extension only refines a generic
// answer (plain text, unknown binary, zip), and never into an Active type,
// so a name cannot make bytes dangerous. Parameters are dropped except the
// charset of text/* types.
func Sniff(head []byte, name string) string {
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	mt, params, err := mime.ParseMediaType(http.DetectContentType(head))
	if err != nil {
		mt, params = "application/octet-stream", nil
	}
	switch mt {
	case "text/plain", "text/xml", "application/octet-stream":
		// DetectContentType knows no SVG; a browser renders one, scripts included.
		if hasSVG(head) {
			return "image/svg+xml"
		}
	}
	switch mt {
	case "text/plain", "application/octet-stream", "application/zip":
		if et := byExtension(name); et != "" && !Active(et) {
			emt, eparams, err := mime.ParseMediaType(et)
			if err == nil {
				if params["charset"] != "" { // the bytes know their charset better than a name
					eparams = params
				}
				mt, params = emt, eparams
			}
		}
	}
	if !strings.HasPrefix(mt, "text/") || params["charset"] == "" {
		return mt
	}
	return mime.FormatMediaType(mt, map[string]string{"charset": params["charset"]})
}

// hasSVG reports whether head holds an <svg tag, also in UTF-16.
func hasSVG(head []byte) bool {
	lower := bytes.ToLower(bytes.ReplaceAll(head, []byte{0}, nil))
	return bytes.Contains(lower, []byte("<svg"))
}

// byExtension is the type the name's extension implies: the system's table,
// else a few common types, so that the answer does not depend on whether the
// host has a mime.types file.
func byExtension(name string) string {
	ext := strings.ToLower(path.Ext(strings.ReplaceAll(name, `\`, "/")))
	if ext == "" {
		return ""
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	switch ext {
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".md", ".markdown":
		return "text/markdown; charset=utf-8"
	case ".txt", ".log":
		return "text/plain; charset=utf-8"
	case ".json":
		return "application/json"
	case ".docx":
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case ".xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case ".pptx":
		return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	case ".odt":
		return "application/vnd.oasis.opendocument.text"
	case ".ods":
		return "application/vnd.oasis.opendocument.spreadsheet"
	case ".epub":
		return "application/epub+zip"
	case ".jar":
		return "application/java-archive"
	case ".apk":
		return "application/vnd.android.package-archive"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	case ".mkv":
		return "video/x-matroska"
	case ".mp3":
		return "audio/mpeg"
	case ".m4a":
		return "audio/mp4"
	case ".flac":
		return "audio/flac"
	case ".heic":
		return "image/heic"
	case ".tar":
		return "application/x-tar"
	case ".gz":
		return "application/gzip"
	case ".7z":
		return "application/x-7z-compressed"
	}
	return ""
}

// Active reports whether a browser would run script in a document of type
// t: HTML, XHTML, SVG, XML (any +xml), JavaScript and kin, multipart. Such
// files must never be served inline from the API origin: that is stored XSS
// (Appwrite CVE-2022-2925). The type is judged by its words ("xhtml+xml" is
// active, "vnd.openxmlformats-…" is not), and a type that is not a valid
// type/subtype counts as active, since a browser would sniff it and may
// find HTML.
func Active(t string) bool {
	mt, _, err := mime.ParseMediaType(t)
	if err != nil {
		mt = strings.ToLower(t)
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || typ == "multipart" {
		return true
	}
	for w := range strings.FieldsFuncSeq(mt, func(r rune) bool { return strings.ContainsRune("/+.-; ", r) }) {
		if strings.HasPrefix(w, "xml") || strings.HasPrefix(w, "xsl") ||
			strings.Contains(w, "html") || strings.Contains(w, "svg") || strings.Contains(w, "script") {
			return true
		}
	}
	return false
}
