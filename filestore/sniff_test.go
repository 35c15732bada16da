package filestore

import (
	"bytes"
	"strings"
	"testing"
)

var (
	pngHead  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
	zipHead  = []byte("PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")
	mp4Head  = []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
	svgPlain = []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	svgXML   = []byte(`<?xml version="1.0"?>` + "\n" + `<SVG xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`)
)

func TestSniff(t *testing.T) {
	cases := []struct {
		head []byte
		name string
		want string
	}{
		{pngHead, "a.png", "image/png"},
		{pngHead, "a.html", "image/png"}, // the bytes win over the name
		{pngHead, "", "image/png"},
		{[]byte("<!DOCTYPE html><p>hi"), "a.png", "text/html; charset=utf-8"},
		{[]byte("<html><script>alert(1)</script>"), "avatar.jpg", "text/html; charset=utf-8"},
		{svgPlain, "a.png", "image/svg+xml"},
		{svgXML, "a.txt", "image/svg+xml"},
		{append([]byte("  \n"), svgPlain...), "a.svg", "image/svg+xml"},
		{append([]byte("<svg>\x00\x01"), 2, 3), "a.png", "image/svg+xml"}, // binary bytes after the tag
		{[]byte("\xff\xfe<\x00s\x00v\x00g\x00>\x00"), "a.txt", "image/svg+xml"},
		{[]byte(`<?xml version="1.0"?><note/>`), "a.json", "text/xml; charset=utf-8"},
		{[]byte("hello, world"), "a.txt", "text/plain; charset=utf-8"},
		{[]byte("hello, world"), "", "text/plain; charset=utf-8"},
		{[]byte("hello, world"), "x.html", "text/plain; charset=utf-8"}, // never active by name
		{[]byte("hello, world"), "x.svg", "text/plain; charset=utf-8"},
		{[]byte("hello, world"), "x.xml", "text/plain; charset=utf-8"},
		{[]byte("alert(1)"), "x.js", "text/plain; charset=utf-8"},
		{[]byte("alert(1)"), "x.mjs", "text/plain; charset=utf-8"},
		{[]byte("hello, world"), "x.xhtml", "text/plain; charset=utf-8"},
		{[]byte(`{"a": 1}`), "data.json", "application/json"},
		{[]byte("a,b\n1,2\n"), "data.CSV", "text/csv; charset=utf-8"},
		{[]byte("# Title\n"), "README.md", "text/markdown; charset=utf-8"},
		{[]byte("\xfe\xffhi"), "data.csv", "text/csv; charset=utf-16be"}, // the sniffed charset wins
		{zipHead, "report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{zipHead, "a.zip", "application/zip"},
		{zipHead, "a.svg", "application/zip"},
		{mp4Head, "clip.mp4", "video/mp4"},
		{[]byte{0, 1, 2, 3}, "clip.mp4", "video/mp4"},
		{[]byte{0, 1, 2, 3}, "a.bin", "application/octet-stream"},
		{[]byte{0, 1, 2, 3}, `C:\dir\page.htm`, "application/octet-stream"},
		{[]byte{0, 1, 2, 3}, "noext", "application/octet-stream"},
		{nil, "empty.txt", "text/plain; charset=utf-8"},
		{append(bytes.Repeat([]byte("a"), 600), "<svg>"...), "a.txt", "text/plain; charset=utf-8"}, // past 512 bytes
	}
	for _, c := range cases {
		if got := Sniff(c.head, c.name); got != c.want {
			t.Errorf("Sniff(%.30q, %q) = %q, want %q", c.head, c.name, got, c.want)
		}
	}
}

func TestActive(t *testing.T) {
	active := []string{
		"text/html", "text/html; charset=utf-8", "TEXT/HTML", "application/xhtml+xml", "image/svg+xml",
		"text/xml", "application/xml", "application/xslt+xml", "text/javascript", "application/javascript",
		"application/x-javascript", "application/ecmascript", "text/jscript", "text/vbscript",
		"multipart/x-mixed-replace; boundary=x", "application/rss+xml", "text/xsl", "application/xml-dtd",
		"", "html", "text/", "/html", "text/html;;;",
	}
	inert := []string{
		"image/png", "image/jpeg", "text/plain; charset=utf-8", "application/json", "application/pdf",
		"video/mp4", "application/octet-stream", "text/csv", "application/zip",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	}
	for _, m := range active {
		if !Active(m) {
			t.Errorf("Active(%q) = false", m)
		}
	}
	for _, m := range inert {
		if Active(m) {
			t.Errorf("Active(%q) = true", m)
		}
	}
}

func FuzzSniff(f *testing.F) {
	for _, s := range [][]byte{
		pngHead, zipHead, mp4Head, svgPlain, svgXML, nil, []byte("hello"), []byte("<!DOCTYPE html>"),
		[]byte("<?xml version='1.0'?><x/>"), []byte("\xef\xbb\xbf<svg/>"), []byte("%PDF-1.7"),
		[]byte("GIF89a"), []byte("\xff\xd8\xff"), []byte("<script>"), []byte("\x00<svg"),
	} {
		f.Add(s, "a.png")
		f.Add(s, "a.html")
	}
	names := []string{"a.png", "a.txt", "a.docx", "a.json", "a.mp4", "a.zip", "a", ""}
	activeNames := []string{"a.html", "a.svg", "a.xml", "a.js", "a.xhtml", "a.htm"}
	f.Fuzz(func(t *testing.T, head []byte, name string) {
		alone := Sniff(head, "")
		got := Sniff(head, name)
		if got == "" || strings.Contains(got, ",") {
			t.Fatalf("Sniff(%q, %q) = %q", head, name, got)
		}
		// An extension never makes a type active: only the bytes can.
		for _, n := range append(append([]string{name}, names...), activeNames...) {
			if Active(Sniff(head, n)) && !Active(alone) {
				t.Fatalf("Sniff(%q, %q) = %q is active, but the bytes alone sniff as %q", head, n, Sniff(head, n), alone)
			}
		}
		// SVG is always found, whatever follows the tag.
		svg := append([]byte("<svg"), head...)
		for _, n := range append([]string{name}, names...) {
			if s := Sniff(svg, n); !Active(s) {
				t.Fatalf("Sniff(%q, %q) = %q, not active", svg, n, s)
			}
		}
	})
}
