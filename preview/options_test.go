package preview

import (
	"errors"
	"net/url"
	"regexp"
	"testing"
)

func TestParseOptionsValid(t *testing.T) {
	q, err := url.ParseQuery("width=400&height=300&gravity=top-left&quality=80&borderWidth=2&borderColor=ff0000" +
		"&borderRadius=10&opacity=0.5&rotation=-90&background=00ff0080&output=jpg&token=abc&project=p1")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(q)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Width: 400, Height: 300, Gravity: "top-left", Quality: 80, BorderWidth: 2, BorderColor: "ff0000",
		BorderRadius: 10, Rotation: -90, Background: "00ff0080", Output: "jpg"}
	if o.Opacity == nil || *o.Opacity != 0.5 {
		t.Errorf("opacity = %v, want 0.5", o.Opacity)
	}
	o.Opacity = nil
	if o != want {
		t.Errorf("got %+v\nwant %+v", o, want)
	}

	empty, err := ParseOptions(url.Values{"width": {""}, "opacity": {""}})
	if err != nil {
		t.Fatal(err)
	}
	if empty != (Options{}) {
		t.Errorf("empty values gave %+v, want the zero Options", empty)
	}
}

// Every parameter at both ends of its range, just past them, and malformed.
func TestParseOptionsBounds(t *testing.T) {
	for _, tc := range []struct {
		param, value string
		wantErr      string // "" = accepted
	}{
		{"width", "0", ""},
		{"width", "4000", ""},
		{"width", "-1", "width: must be between 0 and 4000"},
		{"width", "4001", "width: must be between 0 and 4000"},
		{"width", "12px", "width: must be between 0 and 4000"},
		{"width", "1e3", "width: must be between 0 and 4000"},
		{"height", "0", ""},
		{"height", "4000", ""},
		{"height", "-1", "height: must be between 0 and 4000"},
		{"height", "4001", "height: must be between 0 and 4000"},
		{"quality", "-1", ""},
		{"quality", "0", ""},
		{"quality", "100", ""},
		{"quality", "-2", "quality: must be between -1 and 100"},
		{"quality", "101", "quality: must be between -1 and 100"},
		{"borderWidth", "0", ""},
		{"borderWidth", "100", ""},
		{"borderWidth", "-1", "borderWidth: must be between 0 and 100"},
		{"borderWidth", "101", "borderWidth: must be between 0 and 100"},
		{"borderRadius", "0", ""},
		{"borderRadius", "4000", ""},
		{"borderRadius", "-1", "borderRadius: must be between 0 and 4000"},
		{"borderRadius", "4001", "borderRadius: must be between 0 and 4000"},
		{"rotation", "-360", ""},
		{"rotation", "360", ""},
		{"rotation", "-361", "rotation: must be between -360 and 360"},
		{"rotation", "361", "rotation: must be between -360 and 360"},
		{"rotation", "45.5", "rotation: must be between -360 and 360"},
		{"opacity", "0", ""},
		{"opacity", "1", ""},
		{"opacity", "0.25", ""},
		{"opacity", "-0.01", "opacity: must be a number between 0 and 1"},
		{"opacity", "1.01", "opacity: must be a number between 0 and 1"},
		{"opacity", "NaN", "opacity: must be a number between 0 and 1"},
		{"opacity", "half", "opacity: must be a number between 0 and 1"},
		{"gravity", "center", ""},
		{"gravity", "bottom-right", ""},
		{"gravity", "Top-Left", ""},
		{"gravity", "middle", "gravity: must be one of center, top-left, top, top-right, left, right, bottom-left, bottom, bottom-right"},
		{"borderColor", "abc", ""},
		{"borderColor", "A0B1C2", ""},
		{"borderColor", "a0b1c2d3", ""},
		{"borderColor", "#a0b1c2", ""},
		{"borderColor", "a0b1c", `borderColor: must be a hex colour "rgb", "rrggbb" or "rrggbbaa"`},
		{"borderColor", "red", `borderColor: must be a hex colour "rgb", "rrggbb" or "rrggbbaa"`},
		{"borderColor", "gggggg", `borderColor: must be a hex colour "rgb", "rrggbb" or "rrggbbaa"`},
		{"background", "ffffff", ""},
		{"background", "ffffff00", ""},
		{"background", "+fffff", `background: must be a hex colour "rgb", "rrggbb" or "rrggbbaa"`},
		{"output", "jpeg", ""},
		{"output", "jpg", ""},
		{"output", "png", ""},
		{"output", "gif", ""},
		{"output", "webp", ""},
		{"output", "avif", "output: must be one of jpeg, jpg, png, gif, webp"},
		{"output", "bmp", "output: must be one of jpeg, jpg, png, gif, webp"},
	} {
		t.Run(tc.param+"="+tc.value, func(t *testing.T) {
			_, err := ParseOptions(url.Values{tc.param: {tc.value}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.wantErr)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error %q, want %q", err, tc.wantErr)
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Param != tc.param || !errors.Is(err, ErrInvalidOption) {
				t.Errorf("error %#v is not an *OptionError for %q wrapping ErrInvalidOption", err, tc.param)
			}
		})
	}
}

func TestParseOptionsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, query, wantErr string
	}{
		{"unknown", "width=10&size=3", "size: unknown parameter; allowed are width, height, gravity, quality, borderWidth, borderColor, borderRadius, opacity, rotation, background, output"},
		{"unknown, sorted", "zoom=2&Width=10", "Width, zoom: unknown parameter; allowed are width, height, gravity, quality, borderWidth, borderColor, borderRadius, opacity, rotation, background, output"},
		{"repeated", "width=10&width=20", "width: given more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseOptions(q)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	nan := 0.0
	nan /= nan
	for _, o := range []Options{
		{Width: -1}, {Height: 4001}, {Quality: 101}, {BorderWidth: 101}, {BorderRadius: -1},
		{Rotation: 400}, {Opacity: new(2.0)}, {Opacity: &nan}, {Gravity: "north"}, {BorderColor: "xyz"},
		{Background: "12345"}, {Output: "tiff"},
	} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidOption", o, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
}

func TestKey(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	same := [][]Options{
		{{}, {Gravity: "center"}, {Quality: -1}, {Quality: 90}, {Opacity: new(1.0)}, {Rotation: 360}, {Rotation: -360},
			{BorderColor: "ff0000"}, {Gravity: "top"}},
		{{Output: "jpg"}, {Output: "jpeg"}, {Output: "JPEG"}},
		{{Rotation: -90}, {Rotation: 270}},
		{{BorderWidth: 3}, {BorderWidth: 3, BorderColor: "000"}, {BorderWidth: 3, BorderColor: "#000000ff"}},
		{{Background: "fff"}, {Background: "FFFFFF"}, {Background: "ffffffff"}},
		{{Width: 10, Gravity: "left"}, {Width: 10}},
		{{Output: "png", Quality: 50}, {Output: "png"}},
	}
	seen := map[string]int{}
	for i, group := range same {
		k := group[0].Key()
		if !hex32.MatchString(k) {
			t.Fatalf("Key() = %q, want 32 hex digits", k)
		}
		for _, o := range group[1:] {
			if got := o.Key(); got != k {
				t.Errorf("group %d: %+v has key %s, %+v has %s", i, group[0], k, o, got)
			}
		}
		if j, dup := seen[k]; dup {
			t.Errorf("groups %d and %d share key %s", j, i, k)
		}
		seen[k] = i
	}
	differ := []Options{
		{Height: 10}, {Width: 10, Height: 10}, {Width: 10, Height: 10, Gravity: "left"},
		{Quality: 50}, {BorderWidth: 1}, {BorderWidth: 1, BorderColor: "fff"}, {BorderRadius: 1},
		{Opacity: new(0.0)}, {Opacity: new(0.5)}, {Rotation: 1}, {Background: "000"}, {Output: "webp"}, {Output: "gif"},
	}
	for _, o := range differ {
		k := o.Key()
		if j, dup := seen[k]; dup {
			t.Errorf("%+v has the key of group %d", o, j)
		}
		seen[k] = -1
	}
}
