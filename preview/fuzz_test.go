package preview

import (
	"errors"
	"testing"
)

// FuzzRender feeds arbitrary bytes and options to Render: it must return an
// image or one of its errors, never panic. Limits and sizes are kept small so
// that each run is fast.
func FuzzRender(f *testing.F) {
	small := quadrants(8, 6)
	for _, format := range []string{FormatPNG, FormatJPEG, FormatGIF, FormatWebP, "webp-lossy"} {
		f.Add(encodeAs(f, small, format), uint8(4), uint8(0), int16(0), uint8(0), uint8(0), uint8(0), uint8(0))
		f.Add(encodeAs(f, small, format), uint8(5), uint8(9), int16(33), uint8(2), uint8(3), uint8(128), uint8(3))
	}
	f.Add(tinyWebP, uint8(0), uint8(0), int16(-90), uint8(1), uint8(1), uint8(255), uint8(1))
	f.Add(pngHeader(1<<20, 1<<20), uint8(1), uint8(1), int16(0), uint8(0), uint8(0), uint8(0), uint8(0))
	f.Add([]byte("GIF89a"), uint8(1), uint8(1), int16(0), uint8(0), uint8(0), uint8(0), uint8(0))

	outputs := []string{"", "jpeg", "png", "gif", "webp"}
	gravities := []string{"", "top-left", "top", "top-right", "left", "right", "bottom-left", "bottom", "bottom-right"}
	f.Fuzz(func(t *testing.T, src []byte, w, h uint8, rot int16, border, radius, opacity, sel uint8) {
		o := Options{
			Width:        int(w % 33),
			Height:       int(h % 33),
			Gravity:      gravities[int(sel)%len(gravities)],
			Rotation:     int(rot) % 361,
			BorderWidth:  int(border % 8),
			BorderColor:  "ff000080",
			BorderRadius: int(radius % 40),
			Opacity:      new(float64(opacity) / 255),
			Output:       outputs[int(sel/16)%len(outputs)],
		}
		if sel&1 == 1 {
			o.Background = "123"
		}
		out, ct, err := Render(src, o, Limits{MaxInputBytes: 1 << 16, MaxInputPixels: 64 * 64})
		if err != nil {
			if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		decodeOut(t, out, ct)
	})
}
