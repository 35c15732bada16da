package preview

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image/color"
	"runtime"
	"strings"
	"testing"
)

func TestRenderInputFormats(t *testing.T) {
	src := quadrants(40, 20)
	for _, tc := range []struct {
		in, wantType string
		tol          int
	}{
		{FormatPNG, "image/png", 0},
		{FormatJPEG, "image/jpeg", 40},
		{FormatGIF, "image/gif", 0},
		{FormatWebP, "image/webp", 40}, // lossless in, but webp output is lossy
		{"webp-lossy", "image/webp", 40},
	} {
		t.Run(tc.in, func(t *testing.T) {
			out, ct, err := Render(encodeAs(t, src, tc.in), Options{}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if ct != tc.wantType {
				t.Errorf("content type %q, want %q (output defaults to the input's format)", ct, tc.wantType)
			}
			m := decodeOut(t, out, ct)
			wantSize(t, m, 40, 20)
			wantColor(t, m, 5, 5, red, tc.tol)
			wantColor(t, m, 35, 15, yellow, tc.tol)
		})
	}
}

// tinyWebP is a 1x1 lossless webp of colour #112233, as fixed bytes: the
// decoder is tested on a file the encoder under test did not just make.
var tinyWebP = []byte("RIFF\x1e\x00\x00\x00WEBPVP8L\x11\x00\x00\x00/\x00\x00\x00\x00\aP\x91Ft\xa6\xff\x81\x88\xe8\x7f\x00\x00")

func TestRenderTinyWebP(t *testing.T) {
	m := render(t, tinyWebP, Options{Width: 3, Output: "png"})
	wantSize(t, m, 3, 3)
	wantColor(t, m, 1, 1, color.NRGBA{0x11, 0x22, 0x33, 0xff}, 0)
}

func TestRenderOutputFormats(t *testing.T) {
	src := encodeAs(t, quadrants(200, 100), FormatPNG)
	for _, tc := range []struct {
		out, wantType string
		tol           int
	}{
		{"jpeg", "image/jpeg", 40},
		{"jpg", "image/jpeg", 40},
		{"png", "image/png", 2},
		{"gif", "image/gif", 2},
		{"webp", "image/webp", 40},
		{"WEBP", "image/webp", 40},
	} {
		t.Run(tc.out, func(t *testing.T) {
			out, ct, err := Render(src, Options{Width: 100, Output: tc.out}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if ct != tc.wantType {
				t.Errorf("content type %q, want %q", ct, tc.wantType)
			}
			m := decodeOut(t, out, ct)
			wantSize(t, m, 100, 50)
			wantColor(t, m, 10, 10, red, tc.tol)
			wantColor(t, m, 90, 10, green, tc.tol)
			wantColor(t, m, 10, 40, blue, tc.tol)
			wantColor(t, m, 90, 40, yellow, tc.tol)
		})
	}
}

func TestRenderSize(t *testing.T) {
	for _, tc := range []struct {
		name         string
		sw, sh, w, h int
		wantW, wantH int
	}{
		{"original", 200, 100, 0, 0, 200, 100},
		{"width only keeps aspect", 200, 100, 50, 0, 50, 25},
		{"height only keeps aspect", 200, 100, 0, 50, 100, 50},
		{"width only upscales", 20, 10, 300, 0, 300, 150},
		{"both crop", 200, 100, 30, 60, 30, 60},
		{"same aspect", 200, 100, 100, 50, 100, 50},
		{"derived side capped at MaxSize", 1, 100, 4000, 0, 40, 4000},
		{"tiny rounds to 1", 1000, 1, 10, 0, 10, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := encodeAs(t, quadrants(tc.sw, tc.sh), FormatPNG)
			m := render(t, src, Options{Width: tc.w, Height: tc.h, Output: "png"})
			wantSize(t, m, tc.wantW, tc.wantH)
		})
	}
}

// Bands of red, green and blue, cropped to a square: gravity decides which
// band survives, seen at the result's centre.
func TestRenderGravity(t *testing.T) {
	wide := encodeAs(t, bands(300, 100, false), FormatPNG)
	tall := encodeAs(t, bands(100, 300, true), FormatPNG)
	for _, tc := range []struct {
		gravity string
		src     []byte
		want    color.NRGBA
	}{
		{"", wide, green},
		{"center", wide, green},
		{"left", wide, red},
		{"right", wide, blue},
		{"top-left", wide, red},
		{"bottom-left", wide, red},
		{"top-right", wide, blue},
		{"bottom-right", wide, blue},
		{"top", wide, green},
		{"bottom", wide, green},
		{"center", tall, green},
		{"top", tall, red},
		{"bottom", tall, blue},
		{"top-left", tall, red},
		{"top-right", tall, red},
		{"bottom-left", tall, blue},
		{"bottom-right", tall, blue},
		{"left", tall, green},
		{"right", tall, green},
	} {
		t.Run(tc.gravity, func(t *testing.T) {
			m := render(t, tc.src, Options{Width: 50, Height: 50, Gravity: tc.gravity, Output: "png"})
			wantSize(t, m, 50, 50)
			wantColor(t, m, 25, 25, tc.want, 2)
			// The whole square is one band: no neighbour bled in.
			wantColor(t, m, 2, 2, tc.want, 2)
			wantColor(t, m, 47, 47, tc.want, 2)
		})
	}
}

func TestRenderRotation(t *testing.T) {
	src := encodeAs(t, quadrants(200, 100), FormatPNG)
	clear := color.NRGBA{}
	for _, tc := range []struct {
		name         string
		o            Options
		wantW, wantH int
		at           []struct {
			x, y int
			c    color.NRGBA
		}
	}{
		{"0", Options{}, 200, 100, nil},
		{"360 is 0", Options{Rotation: 360}, 200, 100, nil},
		{"90 clockwise swaps sides", Options{Rotation: 90}, 100, 200, []struct {
			x, y int
			c    color.NRGBA
		}{{95, 5, red}, {5, 5, blue}, {95, 195, green}, {5, 195, yellow}}},
		{"180", Options{Rotation: 180}, 200, 100, []struct {
			x, y int
			c    color.NRGBA
		}{{195, 95, red}, {5, 5, yellow}}},
		{"-90 is 270", Options{Rotation: -90}, 100, 200, []struct {
			x, y int
			c    color.NRGBA
		}{{5, 195, red}, {95, 195, blue}, {5, 5, green}}},
		{"45 grows the canvas, corners transparent", Options{Rotation: 45}, 213, 213, []struct {
			x, y int
			c    color.NRGBA
		}{{1, 1, clear}, {211, 1, clear}, {1, 211, clear}, {211, 211, clear}}},
		{"45 with background", Options{Rotation: 45, Background: "0000ff"}, 213, 213, []struct {
			x, y int
			c    color.NRGBA
		}{{1, 1, blue}, {211, 211, blue}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Output = "png"
			m := render(t, src, tc.o)
			wantSize(t, m, tc.wantW, tc.wantH)
			for _, p := range tc.at {
				wantColor(t, m, p.x, p.y, p.c, 2)
			}
		})
	}
	t.Run("45 jpeg corners white", func(t *testing.T) {
		m := render(t, src, Options{Rotation: 45, Output: "jpeg"})
		wantSize(t, m, 213, 213)
		wantColor(t, m, 1, 1, white, 8)
	})
}

func TestRenderBorder(t *testing.T) {
	src := encodeAs(t, uniform(100, 80, green), FormatPNG)
	for _, tc := range []struct {
		name   string
		o      Options
		border color.NRGBA
	}{
		{"default black", Options{BorderWidth: 5}, color.NRGBA{0, 0, 0, 0xff}},
		{"red", Options{BorderWidth: 5, BorderColor: "ff0000"}, red},
		{"short form", Options{BorderWidth: 5, BorderColor: "00f"}, blue},
		{"translucent over green", Options{BorderWidth: 5, BorderColor: "ff000080"}, color.NRGBA{0x80, 0x7f, 0, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Output = "png"
			m := render(t, src, tc.o)
			wantSize(t, m, 100, 80) // drawn inside the size
			wantColor(t, m, 0, 0, tc.border, 2)
			wantColor(t, m, 4, 40, tc.border, 2)
			wantColor(t, m, 99, 79, tc.border, 2)
			wantColor(t, m, 50, 4, tc.border, 2)
			wantColor(t, m, 5, 40, green, 0)
			wantColor(t, m, 50, 40, green, 0)
		})
	}
	t.Run("wider than the image fills it", func(t *testing.T) {
		m := render(t, src, Options{Width: 10, BorderWidth: 100, BorderColor: "ff0000", Output: "png"})
		wantSize(t, m, 10, 8)
		wantColor(t, m, 5, 4, red, 0)
	})
}

func TestRenderRadius(t *testing.T) {
	src := encodeAs(t, uniform(100, 80, green), FormatPNG)
	t.Run("png corner transparent", func(t *testing.T) {
		m := render(t, src, Options{BorderRadius: 20, Output: "png"})
		wantSize(t, m, 100, 80)
		for _, p := range [][2]int{{0, 0}, {99, 0}, {0, 79}, {99, 79}, {3, 3}} {
			if a := nrgbaAt(m, p[0], p[1]).A; a != 0 {
				t.Errorf("corner pixel %v alpha %d, want 0", p, a)
			}
		}
		wantColor(t, m, 50, 40, green, 0)
		wantColor(t, m, 50, 0, green, 0)  // the edge between the corners
		wantColor(t, m, 10, 10, green, 0) // inside the arc
	})
	t.Run("jpeg corner is background", func(t *testing.T) {
		m := render(t, src, Options{BorderRadius: 20, Background: "0000ff", Output: "jpeg"})
		wantColor(t, m, 0, 0, blue, 40)
		wantColor(t, m, 50, 40, green, 40)
	})
	t.Run("jpeg corner without background is white", func(t *testing.T) {
		m := render(t, src, Options{BorderRadius: 20, Output: "jpeg"})
		wantColor(t, m, 0, 0, white, 8)
	})
	t.Run("radius capped makes a stadium", func(t *testing.T) {
		m := render(t, src, Options{BorderRadius: 4000, Output: "png"})
		wantColor(t, m, 0, 10, color.NRGBA{}, 0)
		wantColor(t, m, 99, 70, color.NRGBA{}, 0)
		wantColor(t, m, 1, 40, green, 0) // the round ends touch the sides
		wantColor(t, m, 50, 0, green, 0)
		wantColor(t, m, 50, 40, green, 0)
	})
}

func TestRenderOpacity(t *testing.T) {
	src := encodeAs(t, uniform(20, 20, red), FormatPNG)
	for _, tc := range []struct {
		name  string
		o     Options
		wantA uint8
	}{
		{"default is opaque", Options{}, 0xff},
		{"1", Options{Opacity: new(1.0)}, 0xff},
		{"half", Options{Opacity: new(0.5)}, 0x80},
		{"0", Options{Opacity: new(0.0)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Output = "png"
			m := render(t, src, tc.o)
			c := nrgbaAt(m, 10, 10)
			if d := int(c.A) - int(tc.wantA); d < -1 || d > 1 {
				t.Errorf("alpha %d, want %d", c.A, tc.wantA)
			}
			if c.A != 0 && c.R < 0xfd {
				t.Errorf("colour %v, want red kept under the alpha", c)
			}
		})
	}
	t.Run("jpeg half over white is pink", func(t *testing.T) {
		m := render(t, src, Options{Opacity: new(0.5), Output: "jpeg"})
		wantColor(t, m, 10, 10, color.NRGBA{0xff, 0x7f, 0x7f, 0xff}, 12)
	})
}

func TestRenderBackground(t *testing.T) {
	// Left half opaque red, right half transparent.
	half := uniform(40, 20, red)
	for y := range 20 {
		for x := 20; x < 40; x++ {
			half.SetNRGBA(x, y, color.NRGBA{})
		}
	}
	src := encodeAs(t, half, FormatPNG)
	for _, tc := range []struct {
		name string
		o    Options
		want color.NRGBA
		tol  int
	}{
		{"jpeg background", Options{Background: "00ff00", Output: "jpeg"}, green, 40},
		{"jpeg default white", Options{Output: "jpeg"}, white, 8},
		{"jpeg translucent background over white", Options{Background: "0000ff80", Output: "jpeg"}, color.NRGBA{0x7f, 0x7f, 0xff, 0xff}, 12},
		{"png background", Options{Background: "00ff00", Output: "png"}, green, 0},
		{"png keeps transparency", Options{Output: "png"}, color.NRGBA{}, 0},
		{"gif keeps transparency", Options{Output: "gif"}, color.NRGBA{}, 0},
		{"webp background", Options{Background: "00ff00", Output: "webp"}, green, 40},
		{"webp keeps transparency", Options{Output: "webp"}, color.NRGBA{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, src, tc.o)
			got := nrgbaAt(m, 30, 10)
			if tc.want.A == 0 {
				if got.A != 0 {
					t.Errorf("transparent area = %v, want alpha 0", got)
				}
			} else if !near(got, tc.want, tc.tol) {
				t.Errorf("transparent area = %v, want %v", got, tc.want)
			}
			wantColor(t, m, 10, 10, red, 40)
		})
	}
}

// pngHeader is a valid PNG signature and IHDR chunk claiming w x h pixels,
// with no pixel data after it.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 6 // 8-bit RGBA
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

func TestRenderTooLarge(t *testing.T) {
	gifHeader := []byte("GIF89a\xff\xff\xff\xff\x00\x00\x00")
	for _, tc := range []struct {
		name string
		src  []byte
		lim  Limits
	}{
		{"png claims 100000x100000", pngHeader(100000, 100000), Limits{}},
		{"png claims 2^24 square", pngHeader(1<<24, 1<<24), Limits{}},
		{"gif claims 65535x65535", gifHeader, Limits{}},
		{"pixel limit", encodeAs(t, uniform(20, 20, red), FormatPNG), Limits{MaxInputPixels: 399}},
		{"byte limit", encodeAs(t, uniform(20, 20, red), FormatPNG), Limits{MaxInputBytes: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := Render(tc.src, Options{}, tc.lim)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes before refusing", n)
			}
		})
	}
	t.Run("at the limit passes", func(t *testing.T) {
		src := encodeAs(t, uniform(20, 20, red), FormatPNG)
		if _, _, err := Render(src, Options{}, Limits{MaxInputPixels: 400, MaxInputBytes: int64(len(src))}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRenderErrors(t *testing.T) {
	good := encodeAs(t, uniform(20, 20, red), FormatPNG)
	for _, tc := range []struct {
		name    string
		src     []byte
		o       Options
		want    error
		mention string
	}{
		{"empty", nil, Options{}, ErrUnsupported, "not a jpeg"},
		{"text", []byte("hello, world"), Options{}, ErrUnsupported, "not a jpeg"},
		{"bmp", []byte("BM\x00\x00\x00\x00\x00\x00\x00\x00"), Options{}, ErrUnsupported, "not a jpeg"},
		{"truncated png", good[:len(good)/2], Options{}, ErrUnsupported, "png"},
		{"png header only", pngHeader(10, 10), Options{}, ErrUnsupported, "decoding png"},
		{"zero-size png", pngHeader(0, 10), Options{}, ErrUnsupported, "png"},
		{"broken jpeg", []byte("\xff\xd8\xff\xe0garbage"), Options{}, ErrUnsupported, "jpeg"},
		{"broken webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 \x00\x00\x00\x00"), Options{}, ErrUnsupported, "webp"},
		{"bad option", good, Options{Width: -1}, ErrInvalidOption, "width: must be between 0 and 4000"},
		{"bad output", good, Options{Output: "avif"}, ErrInvalidOption, "output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Render(tc.src, tc.o, Limits{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestSupported(t *testing.T) {
	for mt, want := range map[string]bool{
		"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true,
		"IMAGE/PNG": true, "image/jpeg; charset=binary": true,
		"image/svg+xml": false, "image/avif": false, "image/bmp": false, "application/pdf": false, "": false, "image": false,
	} {
		if got := Supported(mt); got != want {
			t.Errorf("Supported(%q) = %v, want %v", mt, got, want)
		}
	}
}

func TestRenderConcurrent(t *testing.T) {
	src := encodeAs(t, quadrants(64, 48), FormatJPEG)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			o := Options{Width: 32, Rotation: 30 * i, Output: []string{"png", "jpeg", "gif", "webp"}[i%4]}
			_, _, err := Render(src, o, Limits{})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Large reductions go through the box shrink first; the layout and the crop
// window must survive it.
func TestRenderLargeReduction(t *testing.T) {
	m := render(t, encodeAs(t, quadrants(1000, 600), FormatPNG), Options{Width: 50, Output: "png"})
	wantSize(t, m, 50, 30)
	wantColor(t, m, 10, 5, red, 2)
	wantColor(t, m, 40, 5, green, 2)
	wantColor(t, m, 10, 25, blue, 2)
	wantColor(t, m, 40, 25, yellow, 2)

	wide := encodeAs(t, bands(3000, 100, false), FormatPNG)
	for g, want := range map[string]color.NRGBA{"left": red, "center": green, "right": blue} {
		m := render(t, wide, Options{Width: 10, Height: 10, Gravity: g, Output: "png"})
		wantSize(t, m, 10, 10)
		wantColor(t, m, 5, 5, want, 2)
		wantColor(t, m, 0, 0, want, 2)
		wantColor(t, m, 9, 9, want, 2)
	}
	// A translucent image averages in premultiplied form: no dark fringe.
	half := uniform(400, 400, color.NRGBA{0xff, 0xff, 0xff, 0x80})
	m = render(t, encodeAs(t, half, FormatPNG), Options{Width: 20, Output: "png"})
	wantColor(t, m, 10, 10, color.NRGBA{0xff, 0xff, 0xff, 0x80}, 2)
}
