package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// column is one column of a table: a header and the path of a field in
// the message's JSON form (dots for nested fields).
type column struct{ header, path string }

func cols(spec ...string) []column {
	out := make([]column, 0, len(spec)/2)
	for i := 0; i+1 < len(spec); i += 2 {
		out = append(out, column{spec[i], spec[i+1]})
	}
	return out
}

// format is the output format asked for: -o, --json, else a table for a
// person at a terminal and JSON for a script.
func (e *cliEnv) format() (string, error) {
	f := e.output
	if e.json {
		if f != "" && f != "json" {
			return "", fmt.Errorf("--json and -o %s disagree", f)
		}
		f = "json"
	}
	if f == "" {
		f = "json"
		if isTerminal(e.stdout) {
			f = "table"
		}
	}
	switch f {
	case "table", "json", "yaml":
		return f, nil
	}
	return "", fmt.Errorf("-o: want table, json or yaml, got %q", f)
}

// human reports whether the output is for a person (a table).
func (e *cliEnv) human() bool {
	f, err := e.format()
	return err == nil && f == "table"
}

// printList prints items: a table with cols, a JSON array or a YAML list.
func (e *cliEnv) printList(c []column, items []proto.Message) error {
	f, err := e.format()
	if err != nil {
		return err
	}
	values := make([]any, 0, len(items))
	for _, m := range items {
		v, err := plain(m, f == "table")
		if err != nil {
			return err
		}
		values = append(values, v)
	}
	switch f {
	case "table":
		return writeTable(e.stdout, c, values)
	case "yaml":
		return writeYAML(e.stdout, values)
	}
	return writeJSON(e.stdout, values)
}

// printOne prints one message: a one-row table, a JSON object or YAML.
func (e *cliEnv) printOne(c []column, m proto.Message) error {
	f, err := e.format()
	if err != nil {
		return err
	}
	v, err := plain(m, f == "table")
	if err != nil {
		return err
	}
	switch f {
	case "table":
		return writeTable(e.stdout, c, []any{v})
	case "yaml":
		return writeYAML(e.stdout, v)
	}
	return writeJSON(e.stdout, v)
}

// printDone reports a change that returns nothing (a delete): a line for a
// person, {"deleted": id} for a script.
func (e *cliEnv) printDone(verb, what, id string) error {
	f, err := e.format()
	if err != nil {
		return err
	}
	v := map[string]string{verb: id, "kind": what}
	switch f {
	case "table":
		_, err = fmt.Fprintf(e.stdout, "%s %s %s\n", verb, what, id)
		return err
	case "yaml":
		return writeYAML(e.stdout, v)
	}
	return writeJSON(e.stdout, v)
}

// plain is m's protojson form as plain values (maps, slices, strings,
// float64, bool), so JSON, YAML and tables all show the API's field names.
// A table shows false and 0 too (all fields); JSON and YAML leave them
// out, as the API does.
func plain(m proto.Message, all bool) (any, error) {
	b, err := protojson.MarshalOptions{EmitUnpopulated: all}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func writeYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

func writeTable(w io.Writer, c []column, rows []any) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, col := range c {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, col.header)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, col := range c {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cell(lookup(r, col.path), col.path))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

var enumName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// cell is one value as a table shows it: lists joined by commas, objects
// as compact JSON, times to the second, "-" for nothing.
func cell(v any, path string) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if strings.HasSuffix(path, "At") || strings.HasSuffix(path, "time") {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t.UTC().Format(time.DateTime)
			}
		}
		if x == "" {
			return "-"
		}
		// An enum's name without its type: ATTRIBUTE_TYPE_STRING in
		// column "type" is "string".
		if field := strings.ToUpper(path[strings.LastIndex(path, ".")+1:]) + "_"; enumName.MatchString(x) {
			if i := strings.LastIndex(x, field); i >= 0 && i+len(field) < len(x) {
				return strings.ToLower(x[i+len(field):])
			}
		}
		return strings.ReplaceAll(x, "\n", " ")
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = cell(p, "")
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, ",")
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return fmt.Sprint(x)
		}
		return strings.TrimSpace(b.String())
	}
}

// listAll prints every item of a cursor-paged list: page gets the items
// after cursor ("" first) and the page size asked for; a shorter page is
// the last.
func listAll(e *cliEnv, c []column, page func(cursor string) ([]proto.Message, int, error)) error {
	var all []proto.Message
	cursor := ""
	for {
		items, limit, err := page(cursor)
		if err != nil {
			return err
		}
		all = append(all, items...)
		if len(items) < limit || len(items) == 0 {
			return e.printList(c, all)
		}
		cursor = items[len(items)-1].(interface{ GetId() string }).GetId()
	}
}

// messages is a page of generated messages as proto.Messages.
func messages[T proto.Message](items []T) []proto.Message {
	out := make([]proto.Message, len(items))
	for i, m := range items {
		out[i] = m
	}
	return out
}
