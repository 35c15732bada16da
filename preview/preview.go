// Package preview renders Appwrite-style image previews: it decodes a stored
// image, resizes or crops it, draws a border, rounds its corners, changes its
// opacity, rotates it, fills a background and encodes the result.
//
// It is pure: bytes in, bytes out. It must never read files, the network, the
// environment or a clock, nor import anything else from Cairn, so that the
// storage API can call it from any handler and cache its output by Key.
package preview

import (
	"errors"
	"mime"
	"strings"
)

// Errors returned by Render. Test for them with errors.Is; the returned error
// says which format or limit was involved.
var (
	// ErrUnsupported means the input is not an image this package can decode
	// (unknown format or undecodable data), or the output format cannot be
	// produced.
	ErrUnsupported = errors.New("preview: unsupported image")
	// ErrTooLarge means the input exceeds Limits; it is returned before any
	// pixel memory is allocated.
	ErrTooLarge = errors.New("preview: image too large")
	// ErrInvalidOption is wrapped by every *OptionError, so a caller can map
	// all bad parameters to one client error.
	ErrInvalidOption = errors.New("preview: invalid option")
)

// Default limits, used for a Limits field that is zero or negative.
const (
	DefaultMaxInputBytes  = 64 << 20   // 64 MiB of encoded input
	DefaultMaxInputPixels = 50_000_000 // 50 megapixels, ~200 MB decoded as RGBA
)

// Limits bound the work Render may do for one input, so that a hostile upload
// cannot exhaust memory: a small file can claim a huge canvas. Zero (or
// negative) fields take the defaults above; there is deliberately no way to
// switch a limit off.
type Limits struct {
	MaxInputBytes  int64
	MaxInputPixels int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = DefaultMaxInputBytes
	}
	if l.MaxInputPixels <= 0 {
		l.MaxInputPixels = DefaultMaxInputPixels
	}
	return l
}

// Supported reports whether a file of this MIME type can be previewed, so the
// storage API can answer "not an image" without reading the file. Parameters
// and case are ignored ("IMAGE/PNG; charset=x" is supported).
func Supported(mimeType string) bool {
	mt, _, err := mime.ParseMediaType(mimeType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(mimeType))
	}
	switch mt {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return true
	}
	return false
}
