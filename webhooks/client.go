package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/cairn-dev/cairn/domain/egress"
)

// ClientOptions bound what deliveries may reach.
type ClientOptions struct {
	// Allow lists hosts ("hooks.internal", "localhost") and addresses or
	// CIDRs ("127.0.0.1", "10.1.0.0/16") deliveries may reach although
	// private (cairn serve --webhook-allow).
	Allow []string
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
}

// NewClient returns the HTTP client deliveries use: it refuses loopback,
// private, link-local, multicast and reserved addresses, checking the
// address it actually dials (DNS answers cannot sneak past), unless Allow
// lists them; no proxy from the environment; redirects are not followed (a
// 3xx is a failed attempt).
func NewClient(o ClientOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	g := &guard{allow: egress.ParseAllow(o.Allow)}
	plain := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	checked := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if g.allow.Host(host) {
				return plain.DialContext(ctx, network, addr)
			}
			return checked.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: t, Timeout: o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// guard decides which addresses deliveries may dial. (The same rules as
// functions' fetch, fnrun/js/fetch.go.)
type guard struct {
	allow egress.Allow
}

func (g *guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("blocked: unparseable address %q", address)
	}
	ip := ap.Addr().Unmap()
	if reason := egress.Refused(ip, g.allow.Nets); reason != "" {
		return fmt.Errorf("blocked: %s is a %s address, which webhooks may not reach", ip, reason)
	}
	return nil
}

// Delivery is one attempt to hand an event to a webhook.
type Delivery struct {
	URL     string
	Secret  []byte
	EventID string
	Event   string
	Attempt int
	Body    []byte
}

// Result is how an attempt went.
type Result struct {
	Status   int
	Excerpt  []byte
	Err      string
	Duration time.Duration
}

// OK reports a 2xx answer.
func (r Result) OK() bool { return r.Err == "" && r.Status >= 200 && r.Status < 300 }

// ExcerptBytes is how much of a response a delivery record keeps.
const ExcerptBytes = 1024

// Post makes one attempt: POST the body as JSON, signed at now.
func Post(ctx context.Context, c *http.Client, d Delivery, now time.Time) Result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return Result{Err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Cairn-Webhooks/1")
	req.Header.Set(HeaderID, d.EventID)
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempt))
	req.Header.Set(HeaderSignature, Sign(d.Secret, now, d.Body))
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: err.Error(), Duration: time.Since(start)}
	}
	defer resp.Body.Close()
	ex, _ := io.ReadAll(io.LimitReader(resp.Body, ExcerptBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return Result{Status: resp.StatusCode, Excerpt: ex, Duration: time.Since(start)}
}

// Backoff is the wait before attempt n+1 after attempt n failed: 1 s,
// doubling, at most max.
func Backoff(n int, max time.Duration) time.Duration {
	d := time.Second
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
