package js

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dop251/goja"

	"github.com/cairn-dev/cairn/domain/egress"
)

// FetchOptions bound what fetch may reach and move.
type FetchOptions struct {
	// AllowPrivate lets fetch reach loopback, private, link-local and other
	// non-public addresses. Off, fetch refuses them, checking the address
	// it actually dials (so DNS answers and redirects cannot sneak past).
	AllowPrivate bool
	// Allow lists hosts ("db.internal", "localhost") and addresses or CIDRs
	// ("127.0.0.1", "10.1.0.0/16") fetch may reach although private.
	Allow []string
	// MaxResponseBytes bounds a response body (default 10 MiB);
	// MaxRequestBytes a request body (default 10 MiB).
	MaxResponseBytes int64
	MaxRequestBytes  int64
	// Timeout bounds one fetch, redirects and body included (default 30 s;
	// never past the execution's own deadline).
	Timeout time.Duration
}

func (o FetchOptions) withDefaults() FetchOptions {
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 10 << 20
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 10 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o
}

func (o FetchOptions) equal(p FetchOptions) bool {
	return o.AllowPrivate == p.AllowPrivate && slices.Equal(o.Allow, p.Allow) &&
		o.MaxResponseBytes == p.MaxResponseBytes && o.MaxRequestBytes == p.MaxRequestBytes && o.Timeout == p.Timeout
}

// maxRedirects is how many redirects fetch follows.
const maxRedirects = 20

// fetcher is a worker's HTTP client for fetch; it is rebuilt when the
// options change.
type fetcher struct {
	opts      FetchOptions
	transport *http.Transport
}

func newFetcher(o FetchOptions) *fetcher {
	o = o.withDefaults()
	g := &guard{allowPrivate: o.AllowPrivate, allow: egress.ParseAllow(o.Allow)}
	plain := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	checked := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	t := &http.Transport{
		Proxy: nil, // a proxy from the environment would dial on fetch's behalf, unchecked
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if g.allowPrivate || g.allow.Host(host) {
				return plain.DialContext(ctx, network, addr)
			}
			return checked.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &fetcher{opts: o, transport: t}
}

// guard decides which addresses fetch may dial.
type guard struct {
	allowPrivate bool
	allow        egress.Allow
}

// blockedError is fetch refusing an address.
type blockedError struct {
	addr   netip.Addr
	reason string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("blocked: %s is a %s address, which functions may not reach", e.addr, e.reason)
}

func (g *guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("blocked: unparseable address %q", address)
	}
	ip := ap.Addr().Unmap()
	if reason := egress.Refused(ip, g.allow.Nets); reason != "" {
		return &blockedError{addr: ip, reason: reason}
	}
	return nil
}

// fetchResult is what a fetch goroutine hands back to the event loop.
type fetchResult struct {
	status     int
	statusText string
	url        string
	redirected bool
	headers    [][2]string
	body       []byte
}

// doFetch is host.fetch(url, method, headerPairs, body, redirect): it
// returns a promise of a raw response the prelude wraps in Response.
func (e *execution) doFetch(c goja.FunctionCall) goja.Value {
	vm := e.vm
	p, resolve, reject := vm.NewPromise()
	fail := func(msg string) goja.Value {
		_ = reject(vm.NewTypeError(msg))
		return vm.ToValue(p)
	}
	rawURL := c.Argument(0).String()
	method := c.Argument(1).String()
	redirect := c.Argument(4).String()
	if redirect != "follow" && redirect != "manual" && redirect != "error" {
		return fail(fmt.Sprintf("fetch: invalid redirect mode %q", redirect))
	}
	if e.pending >= maxFetches {
		return fail(fmt.Sprintf("fetch %s: more than %d fetches in flight", rawURL, maxFetches))
	}
	var body io.Reader
	if b := c.Argument(3); !goja.IsNull(b) && !goja.IsUndefined(b) {
		var data []byte
		if s, ok := b.Export().(string); ok {
			data = []byte(s)
		} else if bs, ok := viewBytes(vm, b); ok {
			data = append([]byte(nil), bs...)
		}
		if int64(len(data)) > e.fetch.opts.MaxRequestBytes {
			return fail(fmt.Sprintf("fetch %s: request body is %d bytes, over the limit of %d", rawURL, len(data), e.fetch.opts.MaxRequestBytes))
		}
		body = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.fetch.opts.Timeout)
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		cancel()
		return fail(fmt.Sprintf("fetch %s: %v", rawURL, err))
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		cancel()
		return fail(fmt.Sprintf("fetch %s: only http and https URLs are supported", rawURL))
	}
	if hs, ok := c.Argument(2).Export().([]any); ok {
		for _, h := range hs {
			if kv, ok := h.([]any); ok && len(kv) == 2 {
				req.Header.Add(fmt.Sprint(kv[0]), fmt.Sprint(kv[1]))
			}
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Cairn-Functions")
	}
	client := &http.Client{
		Transport: e.fetch.transport,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			switch {
			case redirect == "manual":
				return http.ErrUseLastResponse
			case redirect == "error":
				return errors.New("redirect refused (redirect: \"error\")")
			case len(via) >= maxRedirects:
				return fmt.Errorf("more than %d redirects", maxRedirects)
			case r.URL.Scheme != "http" && r.URL.Scheme != "https":
				return fmt.Errorf("redirect to a %s URL", r.URL.Scheme)
			}
			return nil
		},
	}
	limit := e.fetch.opts.MaxResponseBytes
	e.pending++
	go func() {
		defer cancel()
		res, err := e.get(client, req, limit)
		e.post(func() {
			e.pending--
			if err != nil {
				_ = reject(vm.NewTypeError(fetchMessage(rawURL, err)))
				return
			}
			_ = resolve(e.rawResponse(res))
		})
	}()
	return vm.ToValue(p)
}

func (e *execution) get(client *http.Client, req *http.Request, limit int64) (*fetchResult, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.ContentLength > limit {
		return nil, fmt.Errorf("response body is %d bytes, over the limit of %d", res.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("response body is over the limit of %d bytes", limit)
	}
	out := &fetchResult{
		status:     res.StatusCode,
		statusText: strings.TrimSpace(strings.TrimPrefix(res.Status, fmt.Sprint(res.StatusCode))),
		url:        res.Request.URL.String(),
		redirected: res.Request != req,
		body:       body,
	}
	for k, vs := range res.Header {
		for _, v := range vs {
			out.headers = append(out.headers, [2]string{strings.ToLower(k), v})
		}
	}
	return out, nil
}

func (e *execution) rawResponse(r *fetchResult) *goja.Object {
	vm := e.vm
	o := vm.NewObject()
	hs := make([]any, len(r.headers))
	for i, h := range r.headers {
		hs[i] = vm.NewArray(h[0], h[1])
	}
	_ = o.Set("status", r.status)
	_ = o.Set("statusText", r.statusText)
	_ = o.Set("url", r.url)
	_ = o.Set("redirected", r.redirected)
	_ = o.Set("headers", vm.NewArray(hs...))
	_ = o.Set("body", vm.NewArrayBuffer(r.body))
	return o
}

// fetchMessage is the TypeError message for a failed fetch: a refused
// address says "blocked".
func fetchMessage(rawURL string, err error) string {
	var b *blockedError
	if errors.As(err, &b) {
		return fmt.Sprintf("fetch %s: %v", rawURL, b)
	}
	if strings.Contains(err.Error(), "blocked: ") {
		// Dial errors other than *blockedError, e.g. an unparseable address.
		return fmt.Sprintf("fetch %s: %v", rawURL, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("fetch %s: timed out", rawURL)
	}
	return fmt.Sprintf("fetch %s failed: %v", rawURL, err)
}
