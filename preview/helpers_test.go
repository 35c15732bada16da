package preview

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/gen2brain/webp"
)

var (
	red    = color.NRGBA{0xff, 0, 0, 0xff}
	green  = color.NRGBA{0, 0xff, 0, 0xff}
	blue   = color.NRGBA{0, 0, 0xff, 0xff}
	yellow = color.NRGBA{0xff, 0xff, 0, 0xff}
	white  = color.NRGBA{0xff, 0xff, 0xff, 0xff}
)

// quadrants is red top-left, green top-right, blue bottom-left, yellow
// bottom-right, so a crop or rotation shows where each part went.
func quadrants(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := red
			switch {
			case x >= w/2 && y < h/2:
				c = green
			case x < w/2 && y >= h/2:
				c = blue
			case x >= w/2 && y >= h/2:
				c = yellow
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

// bands splits the image into three equal bands of red, green and blue, left
// to right when vertical is false, top to bottom otherwise.
func bands(w, h int, vertical bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	cs := []color.NRGBA{red, green, blue}
	for y := range h {
		for x := range w {
			i := 3 * x / w
			if vertical {
				i = 3 * y / h
			}
			m.SetNRGBA(x, y, cs[i])
		}
	}
	return m
}

func uniform(w, h int, c color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

func encodeAs(t testing.TB, m image.Image, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case FormatPNG:
		err = png.Encode(&buf, m)
	case FormatJPEG:
		err = jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95})
	case FormatGIF:
		err = gif.Encode(&buf, m, nil)
	case FormatWebP:
		err = webp.Encode(&buf, m, webp.Options{Lossless: true})
	case "webp-lossy":
		err = webp.Encode(&buf, m, webp.Options{Quality: 90})
	default:
		t.Fatalf("encodeAs: unknown format %q", format)
	}
	if err != nil {
		t.Fatalf("encoding %s: %v", format, err)
	}
	return buf.Bytes()
}

// decodeOut decodes a Render result, checking its content type matches.
func decodeOut(t testing.TB, b []byte, ct string) image.Image {
	t.Helper()
	f := sniff(b)
	if f == "" || "image/"+f != ct {
		t.Fatalf("output sniffs as %q, content type %q", f, ct)
	}
	m, err := codecFor(f).decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding output %s: %v", f, err)
	}
	return m
}

func render(t testing.TB, src []byte, o Options) image.Image {
	t.Helper()
	out, ct, err := Render(src, o, Limits{})
	if err != nil {
		t.Fatalf("Render(%+v): %v", o, err)
	}
	return decodeOut(t, out, ct)
}

func nrgbaAt(m image.Image, x, y int) color.NRGBA {
	return color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
}

// near reports whether two colours differ by at most tol in every channel;
// lossy codecs and resampling move colours a little.
func near(a, b color.NRGBA, tol int) bool {
	d := func(x, y uint8) bool { v := int(x) - int(y); return v <= tol && v >= -tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && d(a.A, b.A)
}

func wantColor(t *testing.T, m image.Image, x, y int, want color.NRGBA, tol int) {
	t.Helper()
	if got := nrgbaAt(m, x, y); !near(got, want, tol) {
		t.Errorf("pixel (%d,%d) = %v, want %v (±%d)", x, y, got, want, tol)
	}
}

func wantSize(t *testing.T, m image.Image, w, h int) {
	t.Helper()
	if b := m.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
}
