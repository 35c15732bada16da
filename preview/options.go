package preview

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/color"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Bounds of the options, as Appwrite's preview endpoint validates them.
const (
	MaxSize         = 4000
	MaxBorderWidth  = 100
	MaxBorderRadius = 4000
	MaxRotation     = 360
	DefaultQuality  = 90
)

// Gravity values: which part of the image is kept when a crop is needed.
const (
	GravityCenter      = "center"
	GravityTopLeft     = "top-left"
	GravityTop         = "top"
	GravityTopRight    = "top-right"
	GravityLeft        = "left"
	GravityRight       = "right"
	GravityBottomLeft  = "bottom-left"
	GravityBottom      = "bottom"
	GravityBottomRight = "bottom-right"
)

// Output formats.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatWebP = "webp"
)

// Options say how to render a preview. The zero value renders the image at its
// original size in its own format, which is what Appwrite does with no
// parameters.
type Options struct {
	// Width and Height in pixels, 0..MaxSize. One of them 0 keeps the aspect
	// ratio from the other; both 0 keep the original size; both given and the
	// aspect differs, the image is scaled to cover and cropped (Gravity).
	Width, Height int
	// Gravity is which part is kept by a crop: one of the Gravity constants;
	// "" means center.
	Gravity string
	// Quality 1..100 for jpeg and webp output; 0 (or -1, Appwrite's "unset")
	// means DefaultQuality.
	Quality int
	// BorderWidth 0..MaxBorderWidth pixels, drawn inside the output size.
	BorderWidth int
	// BorderColor is hex "rgb", "rrggbb" or "rrggbbaa"; "" means black.
	BorderColor string
	// BorderRadius 0..MaxBorderRadius pixels of rounded corners; outside them
	// is transparent, or Background (white without one) for jpeg.
	BorderRadius int
	// Opacity 0..1. It is a pointer because 0 is a meaningful value (fully
	// transparent) while the zero Options must mean "unchanged": nil means 1.
	// Write Opacity: new(0.5).
	Opacity *float64
	// Rotation in degrees clockwise, -MaxRotation..MaxRotation (negative turns
	// anticlockwise, as Appwrite allows). The canvas grows to hold the whole
	// rotated image; uncovered area is Background.
	Rotation int
	// Background is a hex colour drawn under the image after rotation; ""
	// means transparent, or white for jpeg which has no alpha.
	Background string
	// Output is "jpeg" (or "jpg"), "png", "gif" or "webp"; "" means the input's
	// format.
	Output string
}

// OptionError is an option out of its allowed range. It wraps
// ErrInvalidOption. Its message names the parameter, as ParseOptions spells it,
// and what is allowed, so it can be shown to the API client as is.
type OptionError struct {
	Param  string // query parameter name, e.g. "width"
	Reason string // e.g. "must be between 0 and 4000"
}

func (e *OptionError) Error() string { return e.Param + ": " + e.Reason }

// Unwrap lets errors.Is(err, ErrInvalidOption) match.
func (e *OptionError) Unwrap() error { return ErrInvalidOption }

func rangeError(param string, lo, hi int) error {
	return &OptionError{Param: param, Reason: fmt.Sprintf("must be between %d and %d", lo, hi)}
}

// queryParams lists the parameters ParseOptions reads, in Appwrite's spelling.
// Kept as a function so the package holds no mutable globals.
func queryParams() []string {
	return []string{"width", "height", "gravity", "quality", "borderWidth", "borderColor",
		"borderRadius", "opacity", "rotation", "background", "output"}
}

// ignoredParams are accepted and ignored: they authenticate the request and
// are the API layer's business.
func ignoredParams() []string { return []string{"token", "project"} }

// ParseOptions reads Options from the preview URL's query, with Appwrite's
// parameter names. An empty value is the same as an absent one. It refuses a
// parameter given twice and any parameter it does not know (other than
// "token" and "project"), so that a typo is reported rather than silently
// giving a different preview. Errors are *OptionError.
func ParseOptions(q url.Values) (Options, error) {
	var unknown []string
	for k := range q {
		if !slices.Contains(queryParams(), k) && !slices.Contains(ignoredParams(), k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return Options{}, &OptionError{Param: strings.Join(unknown, ", "),
			Reason: "unknown parameter; allowed are " + strings.Join(queryParams(), ", ")}
	}
	get := func(name string) (string, error) {
		vs := q[name]
		if len(vs) > 1 {
			return "", &OptionError{Param: name, Reason: "given more than once"}
		}
		if len(vs) == 0 {
			return "", nil
		}
		return strings.TrimSpace(vs[0]), nil
	}
	getInt := func(name string, lo, hi int) (int, error) {
		s, err := get(name)
		if err != nil || s == "" {
			return 0, err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, rangeError(name, lo, hi)
		}
		return n, nil
	}
	var o Options
	var err error
	if o.Width, err = getInt("width", 0, MaxSize); err != nil {
		return Options{}, err
	}
	if o.Height, err = getInt("height", 0, MaxSize); err != nil {
		return Options{}, err
	}
	if o.Quality, err = getInt("quality", -1, 100); err != nil {
		return Options{}, err
	}
	if o.BorderWidth, err = getInt("borderWidth", 0, MaxBorderWidth); err != nil {
		return Options{}, err
	}
	if o.BorderRadius, err = getInt("borderRadius", 0, MaxBorderRadius); err != nil {
		return Options{}, err
	}
	if o.Rotation, err = getInt("rotation", -MaxRotation, MaxRotation); err != nil {
		return Options{}, err
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"gravity", &o.Gravity}, {"borderColor", &o.BorderColor}, {"background", &o.Background}, {"output", &o.Output}} {
		if *p.dst, err = get(p.name); err != nil {
			return Options{}, err
		}
	}
	s, err := get("opacity")
	if err != nil {
		return Options{}, err
	}
	if s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return Options{}, &OptionError{Param: "opacity", Reason: "must be a number between 0 and 1"}
		}
		o.Opacity = &f
	}
	if err := o.Validate(); err != nil {
		return Options{}, err
	}
	return o, nil
}

// Validate checks every field against its range. Render calls it, so Options
// built in code get the same checks as parsed ones. Errors are *OptionError.
func (o Options) Validate() error {
	_, err := o.normalize()
	return err
}

// normalized is Options with defaults applied, colours parsed and values that
// cannot change the result folded together; Render works from it and Key
// hashes it.
type normalized struct {
	width, height int
	gravity       string
	quality       int
	borderWidth   int
	borderColor   color.NRGBA
	borderRadius  int
	opacity       float64
	rotation      int // 0..359
	background    color.NRGBA
	hasBackground bool
	output        string // "" = same as input
}

func (o Options) normalize() (normalized, error) {
	n := normalized{
		width: o.Width, height: o.Height, quality: o.Quality, borderWidth: o.BorderWidth,
		borderRadius: o.BorderRadius, opacity: 1, borderColor: color.NRGBA{A: 0xff},
	}
	if o.Width < 0 || o.Width > MaxSize {
		return n, rangeError("width", 0, MaxSize)
	}
	if o.Height < 0 || o.Height > MaxSize {
		return n, rangeError("height", 0, MaxSize)
	}
	switch g := strings.ToLower(o.Gravity); g {
	case "":
		n.gravity = GravityCenter
	case GravityCenter, GravityTopLeft, GravityTop, GravityTopRight, GravityLeft, GravityRight,
		GravityBottomLeft, GravityBottom, GravityBottomRight:
		n.gravity = g
	default:
		return n, &OptionError{Param: "gravity", Reason: "must be one of center, top-left, top, top-right, left, right, bottom-left, bottom, bottom-right"}
	}
	if o.Quality < -1 || o.Quality > 100 {
		return n, rangeError("quality", -1, 100)
	}
	if o.Quality <= 0 {
		n.quality = DefaultQuality
	}
	if o.BorderWidth < 0 || o.BorderWidth > MaxBorderWidth {
		return n, rangeError("borderWidth", 0, MaxBorderWidth)
	}
	if o.BorderColor != "" {
		c, ok := parseHex(o.BorderColor)
		if !ok {
			return n, &OptionError{Param: "borderColor", Reason: `must be a hex colour "rgb", "rrggbb" or "rrggbbaa"`}
		}
		n.borderColor = c
	}
	if o.BorderRadius < 0 || o.BorderRadius > MaxBorderRadius {
		return n, rangeError("borderRadius", 0, MaxBorderRadius)
	}
	if o.Opacity != nil {
		f := *o.Opacity
		if math.IsNaN(f) || f < 0 || f > 1 {
			return n, &OptionError{Param: "opacity", Reason: "must be a number between 0 and 1"}
		}
		n.opacity = f
	}
	if o.Rotation < -MaxRotation || o.Rotation > MaxRotation {
		return n, rangeError("rotation", -MaxRotation, MaxRotation)
	}
	n.rotation = ((o.Rotation % 360) + 360) % 360
	if o.Background != "" {
		c, ok := parseHex(o.Background)
		if !ok {
			return n, &OptionError{Param: "background", Reason: `must be a hex colour "rgb", "rrggbb" or "rrggbbaa"`}
		}
		n.background, n.hasBackground = c, true
	}
	switch out := strings.ToLower(o.Output); out {
	case "", FormatPNG, FormatGIF, FormatWebP, FormatJPEG:
		n.output = out
	case "jpg":
		n.output = FormatJPEG
	default:
		return n, &OptionError{Param: "output", Reason: "must be one of jpeg, jpg, png, gif, webp"}
	}

	// Fold what cannot change the pixels, so equal previews get equal keys.
	if n.width == 0 || n.height == 0 {
		n.gravity = GravityCenter
	}
	if n.borderWidth == 0 {
		n.borderColor = color.NRGBA{}
	}
	if n.output == FormatPNG || n.output == FormatGIF {
		n.quality = 0
	}
	return n, nil
}

// Key is a short stable string identifying the preview these options produce
// from a given file, for use in a cache key: options that differ only in
// spelling or in values without effect ("jpg" and "jpeg", rotation -90 and
// 270, gravity without a crop) get the same key. It is the first 32 hex digits
// of a SHA-256 of a versioned canonical encoding, so a change of rendering can
// change the version and leave stale cache entries unreachable. Invalid
// options get a key too, but Render refuses them.
func (o Options) Key() string {
	n, _ := o.normalize()
	bg := "-"
	if n.hasBackground {
		bg = hexNRGBA(n.background)
	}
	canon := fmt.Sprintf("preview/v1 w=%d h=%d g=%s q=%d bw=%d bc=%s br=%d op=%s rot=%d bg=%s out=%s",
		n.width, n.height, n.gravity, n.quality, n.borderWidth, hexNRGBA(n.borderColor), n.borderRadius,
		strconv.FormatFloat(n.opacity, 'g', -1, 64), n.rotation, bg, n.output)
	sum := sha256.Sum256([]byte(canon))
	return hex.EncodeToString(sum[:16])
}

func hexNRGBA(c color.NRGBA) string {
	return fmt.Sprintf("%02x%02x%02x%02x", c.R, c.G, c.B, c.A)
}

// parseHex reads "rgb", "rrggbb" or "rrggbbaa", with or without a leading '#'.
// Appwrite accepts the first two; the alpha form lets a caller ask for a
// translucent border or background.
func parseHex(s string) (color.NRGBA, bool) {
	s = strings.TrimPrefix(s, "#")
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return color.NRGBA{}, false
		}
	}
	if len(s) == 3 {
		s = string([]byte{s[0], s[0], s[1], s[1], s[2], s[2]})
	}
	if len(s) == 6 {
		s += "ff"
	}
	if len(s) != 8 {
		return color.NRGBA{}, false
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return color.NRGBA{}, false
	}
	return color.NRGBA{R: uint8(v >> 24), G: uint8(v >> 16), B: uint8(v >> 8), A: uint8(v)}, true
}
