package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// FieldError is a problem with a project file, at Path in it (for example
// databases[0].collections[2].attributes[0].type).
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func fieldErr(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// LoadFile reads and checks the project file at path.
func LoadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("project file: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and checks a project file. Returns a *FieldError naming
// the path in the file of the first problem found.
func Parse(b []byte) (*File, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, syntaxError(b, err)
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON object")
	}
	if err := checkShape(raw, reflect.TypeFor[File](), ""); err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode project file: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// syntaxError says where in the file a JSON syntax error is.
func syntaxError(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
		return fmt.Errorf("line %d: %w", line, err)
	}
	return fmt.Errorf("not a JSON object: %w", err)
}

// checkShape walks the decoded JSON beside the Go type it must fill, so
// that an unknown field or a value of the wrong kind is reported with its
// full path (encoding/json names neither the index nor, for unknown
// fields, the path).
func checkShape(v any, t reflect.Type, path string) error {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil // null is the zero value, as encoding/json reads it
	}
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "want an object, got %s", jsonKind(v))
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			fields[name] = sf
			names = append(names, name)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sf, ok := fields[k]
			if !ok {
				return fieldErr(join(path, k), "unknown field (known: %s)", strings.Join(names, ", "))
			}
			if err := checkShape(obj[k], sf.Type, join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return fieldErr(path, "want a list, got %s", jsonKind(v))
		}
		for i, e := range arr {
			if err := checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "want an object, got %s", jsonKind(v))
		}
		for k, e := range obj {
			if err := checkShape(e, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fieldErr(path, "want a string, got %s", jsonKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fieldErr(path, "want true or false, got %s", jsonKind(v))
		}
	case reflect.Int32, reflect.Int64, reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			return fieldErr(path, "want a whole number, got %s", jsonKind(v))
		}
		bits := 64
		if t.Kind() == reflect.Int32 {
			bits = 32
		}
		if _, err := strconv.ParseInt(n.String(), 10, bits); err != nil {
			return fieldErr(path, "want a whole number of at most %d bits, got %s", bits, n)
		}
	case reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return fieldErr(path, "want a number, got %s", jsonKind(v))
		}
		if f, err := n.Float64(); err != nil || math.IsInf(f, 0) {
			return fieldErr(path, "want a finite number, got %s", n)
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
