// Command fn is the test function for package wasm: built for wasip1, it
// does what the request's path names (see main).
package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

type request struct {
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	Query     map[string][]string `json:"query"`
	Headers   map[string]string   `json:"headers"`
	Body      []byte              `json:"body"`
	Variables map[string]string   `json:"variables"`
	ProjectID string              `json:"projectId"`
}

type response struct {
	Status     int               `json:"status,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 *string           `json:"bodyBase64,omitempty"`
}

var sink [][]byte

var spins int

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var req request
	if err := json.Unmarshal(in, &req); err != nil {
		fail(err)
	}
	n, _ := strconv.Atoi(first(req.Query["n"]))

	switch req.Path {
	case "/echo":
		echo := map[string]any{
			"method":    req.Method,
			"path":      req.Path,
			"query":     req.Query,
			"body":      string(req.Body),
			"header":    req.Headers["x-in"],
			"variable":  req.Variables["GREETING"],
			"env":       os.Getenv("GREETING"),
			"projectId": os.Getenv("CAIRN_PROJECT_ID"),
		}
		reply(201, map[string]string{"content-type": "application/json", "x-echo": "yes"}, echo)
	case "/binary":
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		s := base64.StdEncoding.EncodeToString(b)
		write(response{Status: 200, BodyBase64: &s})
	case "/big":
		s := strings.Repeat("b", n)
		write(response{Body: &s})
	case "/logs":
		fmt.Fprintln(os.Stderr, "hello log")
		os.Stderr.Write([]byte(strings.Repeat("x", n)))
		reply(200, nil, "ok")
	case "/loop":
		for {
			spins++
		}
	case "/sleep":
		time.Sleep(time.Hour)
		reply(200, nil, "woke")
	case "/oom":
		for {
			b := make([]byte, 1<<20)
			b[len(b)-1] = 1
			sink = append(sink, b)
		}
	case "/exit":
		fmt.Fprintln(os.Stderr, "boom: something broke")
		os.Exit(3)
	case "/panic":
		panic("kaboom")
	case "/nothing":
		// writes no response
	case "/host":
		_, readErr := os.ReadFile("/etc/passwd")
		_, dirErr := os.ReadDir("/")
		rnd := make([]byte, 16)
		_, randErr := rand.Read(rnd)
		reply(200, nil, map[string]any{
			"readErr": errString(readErr),
			"dirErr":  errString(dirErr),
			"home":    os.Getenv("HOME"),
			"path":    os.Getenv("PATH"),
			"environ": os.Environ(),
			"args":    os.Args,
			"year":    time.Now().Year(),
			"randErr": errString(randErr),
			"rand":    rnd,
		})
	default:
		reply(404, nil, "no such path "+req.Path)
	}
}

func reply(status int, headers map[string]string, v any) {
	var body string
	if s, ok := v.(string); ok {
		body = s
	} else {
		b, err := json.Marshal(v)
		if err != nil {
			fail(err)
		}
		body = string(b)
	}
	write(response{Status: status, Headers: headers, Body: &body})
}

func write(r response) {
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
