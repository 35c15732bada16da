package preview

import (
	"image"
	"image/color"
	"testing"
)

// photo is a 2000x1500 picture with smooth gradients and fine detail, closer
// to a camera image than flat colour (which every codec finds too easy).
func photo(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8((x*7 + y*13 + (x*y)%31) % 17) // texture
			m.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x+y)%256) ^ n, 0xff})
		}
	}
	return m
}

func BenchmarkRender(b *testing.B) {
	src := encodeAs(b, photo(2000, 1500), FormatJPEG)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"jpeg2000x1500-to-jpeg400x300", Options{Width: 400, Height: 300, Output: "jpeg"}},
		{"jpeg2000x1500-to-webp400x300", Options{Width: 400, Height: 300, Output: "webp"}},
		{"jpeg2000x1500-to-png400x300", Options{Width: 400, Height: 300, Output: "png"}},
		{"jpeg2000x1500-to-jpeg1000x750", Options{Width: 1000, Output: "jpeg"}},
		{"jpeg2000x1500-to-jpeg400-rot30-radius", Options{Width: 400, Rotation: 30, BorderRadius: 40, Output: "jpeg"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Render(src, tc.o, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}
