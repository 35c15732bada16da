package preview

import (
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/gen2brain/webp"
)

// encode writes m in the output format and returns its content type. m is
// already opaque when out is jpeg (Render flattens it).
func encode(w io.Writer, m *image.RGBA, out string, quality int) (string, error) {
	var err error
	var ct string
	switch out {
	case FormatJPEG:
		ct, err = "image/jpeg", jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
	case FormatPNG:
		ct, err = "image/png", png.Encode(w, m)
	case FormatGIF:
		ct, err = "image/gif", gif.Encode(w, toPaletted(m), &gif.Options{NumColors: 256})
	case FormatWebP:
		// libwebp wants straight alpha; handing it premultiplied pixels would
		// darken every translucent edge.
		nrgba := image.NewNRGBA(m.Bounds())
		drawStraight(nrgba, m)
		ct, err = "image/webp", webp.Encode(w, nrgba, webp.Options{Quality: quality, Method: 4})
	default:
		return "", fmt.Errorf("%w: output format %q", ErrUnsupported, out)
	}
	if err != nil {
		return "", fmt.Errorf("preview: encoding %s: %w", out, err)
	}
	return ct, nil
}

// drawStraight converts premultiplied pixels to straight alpha.
func drawStraight(dst *image.NRGBA, src *image.RGBA) {
	for i := 0; i+3 < len(src.Pix); i += 4 {
		s, d := src.Pix[i:i+4:i+4], dst.Pix[i:i+4:i+4]
		switch a := uint32(s[3]); a {
		case 0:
			d[0], d[1], d[2], d[3] = 0, 0, 0, 0
		case 255:
			copy(d, s)
		default:
			for k := range 3 {
				d[k] = uint8(min(255, (uint32(s[k])*255+a/2)/a))
			}
			d[3] = s[3]
		}
	}
}

// toPaletted maps m onto the Plan 9 palette, with one near-duplicate entry
// given up for full transparency when m has any. It maps each pixel to its
// nearest colour, without dithering, through a cache keyed on 15-bit colour:
// the standard library's Floyd–Steinberg searches all 256 entries for every
// pixel, which is seconds for a large preview.
func toPaletted(m *image.RGBA) *image.Paletted {
	pal := make(color.Palette, len(palette.Plan9))
	copy(pal, palette.Plan9)
	transparent := -1
	if !m.Opaque() {
		transparent = mostRedundant(pal)
		pal[transparent] = color.Transparent
	}
	dst := image.NewPaletted(m.Bounds(), pal)
	var cache [1 << 15]int16
	for i := range cache {
		cache[i] = -1
	}
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			i := m.PixOffset(x, y)
			p := m.Pix[i : i+4 : i+4]
			a := uint32(p[3])
			if a < 128 && transparent >= 0 {
				dst.SetColorIndex(x, y, uint8(transparent))
				continue
			}
			var r, g, bl uint32
			if a > 0 {
				r, g, bl = min(255, uint32(p[0])*255/a), min(255, uint32(p[1])*255/a), min(255, uint32(p[2])*255/a)
			}
			key := (r>>3)<<10 | (g>>3)<<5 | bl>>3
			idx := cache[key]
			if idx < 0 {
				idx = int16(nearest(pal, transparent, r, g, bl))
				cache[key] = idx
			}
			dst.SetColorIndex(x, y, uint8(idx))
		}
	}
	return dst
}

// nearest is the index of the opaque palette entry closest to (r, g, b).
func nearest(pal color.Palette, skip int, r, g, b uint32) int {
	best, bestD := 0, ^uint32(0)
	for i, c := range pal {
		if i == skip {
			continue
		}
		cr, cg, cb, _ := c.RGBA()
		d := sq(cr>>8, r) + sq(cg>>8, g) + sq(cb>>8, b)
		if d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

func sq(a, b uint32) uint32 {
	d := int32(a) - int32(b)
	return uint32(d * d)
}

// mostRedundant is the index of the entry whose nearest neighbour is closest:
// the one whose loss costs least.
func mostRedundant(pal color.Palette) int {
	best, bestD := 0, ^uint32(0)
	for i, c := range pal {
		r, g, b, _ := c.RGBA()
		for j, o := range pal {
			if i == j {
				continue
			}
			or, og, ob, _ := o.RGBA()
			if d := sq(r>>8, or>>8) + sq(g>>8, og>>8) + sq(b>>8, ob>>8); d < bestD {
				best, bestD = i, d
			}
		}
	}
	return best
}
