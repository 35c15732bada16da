package preview

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// Render decodes src (jpeg, png, gif – first frame only –, or webp), applies
// the options in Appwrite's order – resize/crop, border, corner radius,
// opacity, rotation, background – and encodes the result. It returns the
// encoded bytes and their content type.
//
// It refuses src larger than lim before decoding a pixel: the size claimed by
// the header is checked first, so a small file claiming a huge canvas costs
// nothing. Errors wrap ErrUnsupported, ErrTooLarge or are *OptionError.
func Render(src []byte, o Options, lim Limits) ([]byte, string, error) {
	n, err := o.normalize()
	if err != nil {
		return nil, "", err
	}
	lim = lim.withDefaults()
	if int64(len(src)) > lim.MaxInputBytes {
		return nil, "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(src), lim.MaxInputBytes)
	}
	img, format, err := decode(src, lim)
	if err != nil {
		return nil, "", err
	}
	out := n.output
	if out == "" {
		out = format
	}

	m := resize(img, n.width, n.height, n.gravity)
	if n.borderWidth > 0 {
		drawBorder(m, n.borderWidth, n.borderColor)
	}
	if n.borderRadius > 0 {
		roundCorners(m, n.borderRadius)
	}
	if n.opacity < 1 {
		fade(m, n.opacity)
	}
	if n.rotation != 0 {
		m = rotate(m, n.rotation)
	}
	bg, hasBG := n.background, n.hasBackground
	if out == FormatJPEG {
		// JPEG has no alpha: whatever is still transparent must show a colour,
		// white unless the caller chose one (itself made opaque over white).
		bg, hasBG = flattenOverWhite(bg, hasBG), true
	}
	if hasBG {
		fillBackground(m, bg)
	}

	var buf bytes.Buffer
	ct, err := encode(&buf, m, out, n.quality)
	if err != nil {
		return nil, "", err
	}
	return buf.Bytes(), ct, nil
}

// sniff names the format from its magic bytes. It is explicit rather than
// image.Decode's registry so that which decoder runs does not depend on which
// packages happen to be linked into the binary.
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return FormatJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return FormatGIF
	case len(b) >= 16 && string(b[:4]) == "RIFF" && string(b[8:15]) == "WEBPVP8":
		return FormatWebP
	}
	return ""
}

type codec struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

func codecFor(format string) codec {
	switch format {
	case FormatJPEG:
		return codec{jpeg.DecodeConfig, jpeg.Decode}
	case FormatPNG:
		return codec{png.DecodeConfig, png.Decode}
	case FormatGIF:
		return codec{gif.DecodeConfig, gif.Decode} // gif.Decode returns the first frame
	case FormatWebP:
		return codec{webp.DecodeConfig, webp.Decode}
	}
	return codec{}
}

// decode checks the header against the pixel limit, then decodes.
func decode(src []byte, lim Limits) (image.Image, string, error) {
	format := sniff(src)
	if format == "" {
		return nil, "", fmt.Errorf("%w: not a jpeg, png, gif or webp image", ErrUnsupported)
	}
	c := codecFor(format)
	cfg, err := c.config(bytes.NewReader(src))
	if err != nil {
		return nil, "", fmt.Errorf("%w: reading %s header: %w", ErrUnsupported, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", fmt.Errorf("%w: %s claims %dx%d pixels", ErrUnsupported, format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxInputPixels {
		return nil, "", fmt.Errorf("%w: %s of %dx%d pixels, limit %d", ErrTooLarge, format, cfg.Width, cfg.Height, lim.MaxInputPixels)
	}
	img, err := c.decode(bytes.NewReader(src))
	if err != nil {
		return nil, "", fmt.Errorf("%w: decoding %s: %w", ErrUnsupported, format, err)
	}
	if b := img.Bounds(); b.Empty() || int64(b.Dx())*int64(b.Dy()) > lim.MaxInputPixels {
		// The decoders keep to the header, but a frame must not be trusted to.
		return nil, "", fmt.Errorf("%w: %s decoded to %v", ErrUnsupported, format, b)
	}
	return img, format, nil
}
