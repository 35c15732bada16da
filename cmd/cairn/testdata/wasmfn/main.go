// Command wasmfn is the test function of cmd/cairn's functions tests:
// built for wasip1, it answers with what it was given (request, trigger,
// variables) as JSON, fails on path /fail and allocates without end on
// path /alloc.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

type request struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      map[string][]string `json:"query"`
	Headers    map[string]string   `json:"headers"`
	Body       []byte              `json:"body"`
	Variables  map[string]string   `json:"variables"`
	Trigger    string              `json:"trigger"`
	Event      json.RawMessage     `json:"event"`
	EventNames []string            `json:"eventNames"`
	APIKey     string              `json:"apiKey"`
}

// keep holds what /alloc allocates, so that none of it is collected.
var keep [][]byte

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		os.Exit(2)
	}
	var req request
	if err := json.Unmarshal(in, &req); err != nil {
		fmt.Fprintln(os.Stderr, "bad request:", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "handling", req.Method, req.Path)
	if req.Path == "/alloc" {
		for {
			keep = append(keep, make([]byte, 1<<20))
			keep[len(keep)-1][0] = 1
		}
	}
	if req.Path == "/fail" {
		fmt.Fprintln(os.Stderr, "failing on purpose")
		os.Exit(3)
	}
	body, _ := json.Marshal(map[string]any{
		"method": req.Method, "path": req.Path, "query": req.Query, "body": string(req.Body),
		"variables": req.Variables, "trigger": req.Trigger, "eventNames": req.EventNames,
		"hasEvent": len(req.Event) > 0, "hasKey": req.APIKey != "", "header": req.Headers["x-test"],
	})
	out, _ := json.Marshal(map[string]any{"status": 201, "headers": map[string]string{"Content-Type": "application/json", "X-Fn": "yes"}, "body": string(body)})
	os.Stdout.Write(out)
}
