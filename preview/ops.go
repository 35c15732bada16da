package preview

import (
	"image"
	"image/color"
	"math"

	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// The pipeline works on *image.RGBA: alpha-premultiplied, so resampling and
// compositing do not bleed the colour of transparent pixels into their
// neighbours, and x/image/draw has fast paths for it.

// outputSize resolves the requested size against the source size: one side
// given keeps the aspect ratio, none keeps the original size. A side derived
// from the aspect ratio is not allowed past MaxSize – a 1x10000 strip asked
// for at width 4000 would otherwise be 40 million pixels tall – so the whole
// image is then fitted within MaxSize instead.
func outputSize(sw, sh, w, h int) (int, int) {
	switch {
	case w == 0 && h == 0:
		return sw, sh
	case w != 0 && h != 0:
		return w, h
	}
	fw, fh := float64(w), float64(h)
	if w == 0 {
		fw = fh * float64(sw) / float64(sh)
	} else {
		fh = fw * float64(sh) / float64(sw)
	}
	if m := math.Max(fw, fh); m > MaxSize {
		fw, fh = fw*MaxSize/m, fh*MaxSize/m
	}
	return max(1, int(math.Round(fw))), max(1, int(math.Round(fh)))
}

// gravityFactors says where the kept window sits in the source, 0 (left/top)
// to 1 (right/bottom).
func gravityFactors(g string) (fx, fy float64) {
	fx, fy = 0.5, 0.5
	switch g {
	case GravityTopLeft, GravityLeft, GravityBottomLeft:
		fx = 0
	case GravityTopRight, GravityRight, GravityBottomRight:
		fx = 1
	}
	switch g {
	case GravityTopLeft, GravityTop, GravityTopRight:
		fy = 0
	case GravityBottomLeft, GravityBottom, GravityBottomRight:
		fy = 1
	}
	return fx, fy
}

// resize scales src to the requested size. When both sides are given and the
// aspect ratio differs, it scales to cover the box and crops the overflow, the
// window placed by gravity (Appwrite's crop-to-fill). Only the source window
// is resampled, never a scaled copy of the whole image.
func resize(src image.Image, w, h int, gravity string) *image.RGBA {
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	w, h = outputSize(sw, sh, w, h)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))

	scale := math.Max(float64(w)/float64(sw), float64(h)/float64(sh))
	cw := min(float64(sw), float64(w)/scale)
	ch := min(float64(sh), float64(h)/scale)
	fx, fy := gravityFactors(gravity)
	x0 := int(math.Round((float64(sw) - cw) * fx))
	y0 := int(math.Round((float64(sh) - ch) * fy))
	win := image.Rect(x0, y0, x0+max(1, int(math.Round(cw))), y0+max(1, int(math.Round(ch)))).
		Add(sb.Min).Intersect(sb)

	if win.Dx() == w && win.Dy() == h {
		draw.Draw(dst, dst.Bounds(), src, win.Min, draw.Src)
		return dst
	}
	// Past a 4x reduction, average k x k blocks first (k = half the factor),
	// then let Catmull-Rom do the last 2x-3x. Catmull-Rom alone is sharp and,
	// as x/image/draw widens its kernel when downscaling, free of aliasing,
	// but its cost grows with the factor; the box average is the ideal
	// filter for an integer shrink and costs one read per source pixel. This
	// is libvips' shrink-then-reduce; ApproxBiLinear would be faster still but
	// aliases badly on large reductions.
	if k := min(win.Dx()/w, win.Dy()/h) / 2; k >= 2 {
		src = boxShrink(src, win, k)
		win = src.Bounds()
	}
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, win, draw.Src, nil)
	return dst
}

// boxShrink averages k x k blocks of src's window. It converts k rows at a
// time, so a large YCbCr JPEG is never held twice at full size. The last
// Dx()%k columns and Dy()%k rows are dropped: under half an output pixel, as
// k is at most half the final reduction.
func boxShrink(src image.Image, win image.Rectangle, k int) *image.RGBA {
	ow, oh := win.Dx()/k, win.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	strip := image.NewRGBA(image.Rect(0, 0, ow*k, k))
	sums := make([]uint64, ow*4)
	n := uint64(k * k)
	for oy := range oh {
		draw.Draw(strip, strip.Bounds(), src, image.Pt(win.Min.X, win.Min.Y+oy*k), draw.Src)
		clear(sums)
		for y := range k {
			row := strip.Pix[y*strip.Stride : y*strip.Stride+ow*k*4]
			for ox := range ow {
				var r, g, b, a uint64
				for i := ox * k * 4; i < (ox+1)*k*4; i += 4 {
					p := row[i : i+4 : i+4]
					r += uint64(p[0])
					g += uint64(p[1])
					b += uint64(p[2])
					a += uint64(p[3])
				}
				s := sums[ox*4 : ox*4+4 : ox*4+4]
				s[0], s[1], s[2], s[3] = s[0]+r, s[1]+g, s[2]+b, s[3]+a
			}
		}
		out := dst.Pix[oy*dst.Stride : oy*dst.Stride+ow*4]
		for i, v := range sums {
			out[i] = uint8((v + n/2) / n)
		}
	}
	return dst
}

// drawBorder paints a border of width bw inside the image's edge. The four
// bands do not overlap, so a translucent colour is applied once everywhere.
func drawBorder(m *image.RGBA, bw int, c color.NRGBA) {
	b := m.Bounds()
	u := image.NewUniform(c)
	bwx, bwy := min(bw, (b.Dx()+1)/2), min(bw, (b.Dy()+1)/2)
	for _, r := range []image.Rectangle{
		image.Rect(b.Min.X, b.Min.Y, b.Max.X, b.Min.Y+bwy),         // top
		image.Rect(b.Min.X, b.Max.Y-bwy, b.Max.X, b.Max.Y),         // bottom
		image.Rect(b.Min.X, b.Min.Y+bwy, b.Min.X+bwx, b.Max.Y-bwy), // left
		image.Rect(b.Max.X-bwx, b.Min.Y+bwy, b.Max.X, b.Max.Y-bwy), // right
	} {
		if r.Empty() {
			continue
		}
		draw.Draw(m, r, u, image.Point{}, draw.Over)
	}
}

// roundCorners makes the outside of circular corners of radius r transparent,
// antialiased by the pixel's coverage. The radius is capped at half the
// shorter side, which gives a circle or a stadium.
func roundCorners(m *image.RGBA, r int) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	r = min(r, w/2, h/2)
	if r <= 0 {
		return
	}
	fr := float64(r)
	for y := range r {
		for x := range r {
			// Distance of the pixel centre from the corner circle's centre.
			dx, dy := fr-(float64(x)+0.5), fr-(float64(y)+0.5)
			cov := fr - math.Hypot(dx, dy) + 0.5
			if cov >= 1 {
				continue
			}
			cov = max(cov, 0)
			for _, p := range [4]image.Point{{x, y}, {w - 1 - x, y}, {x, h - 1 - y}, {w - 1 - x, h - 1 - y}} {
				i := m.PixOffset(b.Min.X+p.X, b.Min.Y+p.Y)
				px := m.Pix[i : i+4 : i+4]
				for k := range px {
					px[k] = uint8(float64(px[k])*cov + 0.5)
				}
			}
		}
	}
}

// fade multiplies every pixel by opacity; with premultiplied alpha that is
// all four channels.
func fade(m *image.RGBA, opacity float64) {
	var lut [256]uint8
	for i := range lut {
		lut[i] = uint8(float64(i)*opacity + 0.5)
	}
	for i, v := range m.Pix {
		m.Pix[i] = lut[v]
	}
}

// rotate turns m by deg degrees clockwise (1..359). Right angles are exact
// pixel moves; other angles are resampled bilinearly onto a canvas grown to
// the rotated bounding box, the uncovered area left transparent.
func rotate(m *image.RGBA, deg int) *image.RGBA {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	switch deg {
	case 90, 180, 270:
		ow, oh := w, h
		if deg != 180 {
			ow, oh = h, w
		}
		dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
		for y := range h {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				var dx, dy int
				switch deg {
				case 90:
					dx, dy = h-1-y, x
				case 180:
					dx, dy = w-1-x, h-1-y
				case 270:
					dx, dy = y, w-1-x
				}
				copy(dst.Pix[dst.PixOffset(dx, dy):][:4], src[4*x:4*x+4])
			}
		}
		return dst
	}
	rad := float64(deg) * math.Pi / 180
	sin, cos := math.Sincos(rad)
	fw, fh := float64(w), float64(h)
	ow := int(math.Ceil(math.Abs(fw*cos) + math.Abs(fh*sin) - 1e-9))
	oh := int(math.Ceil(math.Abs(fw*sin) + math.Abs(fh*cos) - 1e-9))
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	// Source to destination: move the source centre to the origin, turn
	// clockwise (y points down), move to the destination centre.
	scx, scy := float64(b.Min.X)+fw/2, float64(b.Min.Y)+fh/2
	dcx, dcy := float64(ow)/2, float64(oh)/2
	s2d := f64.Aff3{
		cos, -sin, dcx - (cos*scx - sin*scy),
		sin, cos, dcy - (sin*scx + cos*scy),
	}
	draw.BiLinear.Transform(dst, s2d, m, b, draw.Src, nil)
	return dst
}

// fillBackground composites m over an opaque or translucent colour, in place.
func fillBackground(m *image.RGBA, c color.NRGBA) {
	r, g, bl, a := c.RGBA() // premultiplied, 16 bit
	bg := [4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}
	for i := 0; i+3 < len(m.Pix); i += 4 {
		px := m.Pix[i : i+4 : i+4]
		inv := 255 - uint32(px[3])
		if inv == 0 {
			continue
		}
		for k := range px {
			px[k] = uint8(min(255, uint32(px[k])+(bg[k]*inv+127)/255))
		}
	}
}

// flattenOverWhite gives the opaque background a JPEG gets: the requested
// colour over white, or white.
func flattenOverWhite(c color.NRGBA, ok bool) color.NRGBA {
	if !ok {
		return color.NRGBA{0xff, 0xff, 0xff, 0xff}
	}
	a := uint32(c.A)
	over := func(v uint8) uint8 { return uint8((uint32(v)*a + 255*(255-a) + 127) / 255) }
	return color.NRGBA{over(c.R), over(c.G), over(c.B), 0xff}
}
