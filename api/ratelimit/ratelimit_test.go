package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

var t0 = time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)

func must(t testing.TB, r Rule) *Limiter {
	t.Helper()
	l, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAllowGCRA(t *testing.T) {
	type req struct {
		at    time.Duration
		key   string
		ok    bool
		retry time.Duration
	}
	ms := time.Millisecond
	cases := []struct {
		name string
		rule Rule
		reqs []req
	}{
		{name: "burst then one per second", rule: Rule{Every: time.Second, Burst: 3}, reqs: []req{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
			{0, "a", false, time.Second},
			{500 * ms, "a", false, 500 * ms},
			{999 * ms, "a", false, ms},
			{time.Second, "a", true, 0},
			{time.Second, "a", false, time.Second},
			{2500 * ms, "a", true, 0}, // one regained at 2 s
			{2500 * ms, "a", false, 500 * ms},
			{10 * time.Second, "a", true, 0}, // full again
			{10 * time.Second, "a", true, 0},
			{10 * time.Second, "a", true, 0},
			{10 * time.Second, "a", false, time.Second},
		}},
		{name: "keys are independent", rule: Rule{Every: time.Minute, Burst: 1}, reqs: []req{
			{0, "signin:ip:1.2.3.4", true, 0},
			{0, "signin:ip:1.2.3.4", false, time.Minute},
			{0, "signin:ip:1.2.3.5", true, 0},
			{0, "signin:email:a@b.c", true, 0},
			{30 * time.Second, "signin:ip:1.2.3.4", false, 30 * time.Second},
			{time.Minute, "signin:ip:1.2.3.4", true, 0},
		}},
		{name: "refusals cost nothing", rule: Rule{Every: time.Second, Burst: 1}, reqs: []req{
			{0, "a", true, 0},
			{100 * ms, "a", false, 900 * ms}, {200 * ms, "a", false, 800 * ms}, {300 * ms, "a", false, 700 * ms},
			{time.Second, "a", true, 0},
		}},
		{name: "partial refill", rule: Rule{Every: 10 * time.Second, Burst: 5}, reqs: []req{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
			{25 * time.Second, "a", true, 0}, {25 * time.Second, "a", true, 0},
			{25 * time.Second, "a", false, 5 * time.Second},
		}},
		{name: "clock going back", rule: Rule{Every: time.Second, Burst: 1}, reqs: []req{
			{5 * time.Second, "a", true, 0},
			{4 * time.Second, "a", false, 2 * time.Second},
			{6 * time.Second, "a", true, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := must(t, c.rule)
			for n, r := range c.reqs {
				ok, retry := l.Allow(r.key, t0.Add(r.at))
				if ok != r.ok || retry != r.retry {
					t.Fatalf("request %d (%s at %s): %v, %s; want %v, %s", n, r.key, r.at, ok, retry, r.ok, r.retry)
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, r := range []Rule{
		{Every: 0, Burst: 1},
		{Every: -time.Second, Burst: 1},
		{Every: time.Second, Burst: 0},
		{Every: time.Second, Burst: 1, MaxKeys: -1},
		{Every: 24 * time.Hour, Burst: 366},
	} {
		if _, err := New(r); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	l := must(t, Rule{Every: time.Second, Burst: 1})
	if l.Rule().MaxKeys != DefaultMaxKeys {
		t.Fatalf("MaxKeys %d", l.Rule().MaxKeys)
	}
}

func TestLRUEviction(t *testing.T) {
	l := must(t, Rule{Every: time.Hour, Burst: 1, MaxKeys: 3})
	allow := func(key string, want bool) {
		t.Helper()
		if ok, _ := l.Allow(key, t0); ok != want {
			t.Fatalf("%s: %v, want %v", key, ok, want)
		}
	}
	allow("a", true)
	allow("b", true)
	allow("c", true)
	allow("a", false) // a is now the most recently used
	allow("d", true)  // table full: b, least recently used, is forgotten
	if keys, ev := l.Stats(); keys != 3 || ev != 1 {
		t.Fatalf("stats %d, %d", keys, ev)
	}
	allow("a", false)
	allow("c", false)
	allow("b", true) // forgotten, so allowed again; evicts d, now the least recently used
	allow("a", false)
	allow("c", false)
	allow("d", true)
}

func TestIdleKeysAreForgotten(t *testing.T) {
	l := must(t, Rule{Every: time.Second, Burst: 2, MaxKeys: 1000})
	for i := range 500 {
		l.Allow(strconv.Itoa(i), t0)
	}
	if keys, _ := l.Stats(); keys != 500 {
		t.Fatalf("%d keys", keys)
	}
	// One second later every bucket is full again; traffic on one key
	// sweeps the idle ones away without evicting anything still limited.
	for i := range 300 {
		l.Allow("busy", t0.Add(time.Second+time.Duration(i)*time.Millisecond))
	}
	if keys, ev := l.Stats(); keys != 1 || ev != 0 {
		t.Fatalf("stats %d, %d", keys, ev)
	}
}

func TestBoundedUnderFlood(t *testing.T) {
	const maxKeys = 10_000
	l := must(t, Rule{Name: "sign-in attempts", Every: time.Minute, Burst: 5, MaxKeys: maxKeys})
	for i := range 200_000 { // distinct keys, all within one refill window
		if ok, _ := l.Allow(fmt.Sprintf("signin:ip:10.%d.%d.%d", i>>16, (i>>8)&255, i&255), t0.Add(time.Duration(i)*time.Microsecond)); !ok {
			t.Fatalf("new key %d refused", i)
		}
	}
	keys, ev := l.Stats()
	if keys > maxKeys || keys < maxKeys*9/10 {
		t.Fatalf("%d keys remembered, max %d", keys, maxKeys)
	}
	if ev == 0 {
		t.Fatal("no eviction counted")
	}
	for i := range l.shards {
		s := &l.shards[i]
		if len(s.nodes) > s.max || len(s.index) > s.max {
			t.Fatalf("shard %d: %d nodes, %d indexed, max %d", i, len(s.nodes), len(s.index), s.max)
		}
	}
	// A key used just now is still limited despite the flood.
	last := "signin:ip:10.3.13.63" // i = 199_999
	for range 4 {
		l.Allow(last, t0.Add(time.Second))
	}
	if ok, _ := l.Allow(last, t0.Add(time.Second)); ok {
		t.Fatal("recent key forgot its limit")
	}
}

func TestConcurrentAllow(t *testing.T) {
	const burst, keys, workers = 7, 200, 8
	l := must(t, Rule{Every: time.Hour, Burst: burst, MaxKeys: 4096})
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			local := map[string]int{}
			for i := range keys * burst * 2 {
				k := "k" + strconv.Itoa((i+w*31)%keys)
				if ok, _ := l.Allow(k, t0); ok {
					local[k]++
				}
			}
			mu.Lock()
			for k, n := range local {
				allowed[k] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(allowed) != keys {
		t.Fatalf("%d keys allowed", len(allowed))
	}
	for k, n := range allowed {
		if n != burst {
			t.Fatalf("%s allowed %d times, want %d", k, n, burst)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 1, time.Nanosecond: 1, time.Second: 1, time.Second + time.Millisecond: 2,
		59500 * time.Millisecond: 60, time.Hour: 3600,
	} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("%s: %d, want %d", d, got, want)
		}
	}
}

func TestError(t *testing.T) {
	err := Error(Rule{Name: "sign-in attempts from this address"}, 1500*time.Millisecond)
	if err.Code() != connect.CodeResourceExhausted {
		t.Fatalf("code %s", err.Code())
	}
	if !strings.Contains(err.Message(), "sign-in attempts from this address") || !strings.Contains(err.Message(), "retry after 2 s") {
		t.Fatalf("message %q", err.Message())
	}
	details := err.Details()
	if len(details) != 1 {
		t.Fatalf("%d details", len(details))
	}
	msg, derr := connectproto.UnmarshalErrorDetail(details[0])
	if derr != nil {
		t.Fatal(derr)
	}
	ri, ok := msg.(*errdetails.RetryInfo)
	if !ok || ri.GetRetryDelay().AsDuration() != 2*time.Second {
		t.Fatalf("detail %T %v", msg, msg)
	}
}

func TestRefuse(t *testing.T) {
	l := must(t, Rule{Name: "recovery emails", Every: time.Minute, Burst: 1})
	ctx := context.Background()
	if err := l.Refuse(ctx, "recovery:email:a@b.c", t0); err != nil {
		t.Fatal(err)
	}
	err := l.Refuse(ctx, "recovery:email:a@b.c", t0.Add(20*time.Second))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted || !strings.Contains(ce.Message(), "retry after 40 s") {
		t.Fatalf("err %v", err)
	}
	if SetRetryAfter(ctx, time.Second) {
		t.Fatal("header set outside a call")
	}
}

func TestRefuseInACall(t *testing.T) {
	l := must(t, Rule{Name: "sign-in attempts for this email", Every: 10 * time.Second, Burst: 1})
	srv := connect.NewServer()
	srv.SetUnknownHandler(func(ctx context.Context, _ connect.Spec, _ connect.ServerStream) error {
		if err := l.Refuse(ctx, "signin:email:a@b.c", t0); err != nil {
			return err
		}
		return l.Refuse(ctx, "signin:email:a@b.c", t0.Add(2500*time.Millisecond))
	})
	info := &connect.CallInfo{}
	err := srv.Call(context.Background(), "/cairn.v1.AccountService/CreateEmailPasswordSession", info, nil)
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("err %v", err)
	}
	if got := info.ResponseHeader().Get("Retry-After"); got != "8" {
		t.Fatalf("Retry-After %q", got)
	}
}

func BenchmarkAllowSameKey(b *testing.B) {
	l := must(b, Rule{Every: time.Nanosecond, Burst: 1 << 20})
	now := t0
	for b.Loop() {
		l.Allow("signin:ip:203.0.113.7", now)
	}
}

func BenchmarkAllowManyKeys(b *testing.B) {
	l := must(b, Rule{Every: time.Second, Burst: 5})
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "signin:ip:10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
	}
	i := 0
	for b.Loop() {
		l.Allow(keys[i&(len(keys)-1)], t0)
		i++
	}
}

func BenchmarkAllowFlood(b *testing.B) {
	// Every request a new key, table full: the insert-and-evict path.
	l := must(b, Rule{Every: time.Minute, Burst: 5, MaxKeys: 4096})
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "signin:ip:10.1." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
	}
	i := 0
	for b.Loop() {
		l.Allow(keys[i&(len(keys)-1)], t0)
		i++
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := must(b, Rule{Every: time.Second, Burst: 5})
	keys := make([]string, 1<<12)
	for i := range keys {
		keys[i] = "signin:email:user" + strconv.Itoa(i) + "@example.com"
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i&(len(keys)-1)], t0)
			i++
		}
	})
}

// TestAllowEvery: each key's own rate and burst, read at every call: a
// burst of b passes, b+1 waits exactly every, and a changed rate applies
// from the next request.
func TestAllowEvery(t *testing.T) {
	l := must(t, Rule{Name: "requests of this project", Every: time.Second, Burst: 1})
	const every, burst = 10 * time.Millisecond, 5
	for i := range burst {
		if ok, _ := l.AllowEvery("a", every, burst, t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, retry := l.AllowEvery("a", every, burst, t0)
	if ok || retry != every {
		t.Fatalf("burst+1: ok %v, retry %v; want refused for %v", ok, retry, every)
	}
	if ok, _ := l.AllowEvery("b", every, burst, t0); !ok {
		t.Fatal("another key refused")
	}
	if ok, _ := l.AllowEvery("a", every, burst, t0.Add(every-1)); ok {
		t.Fatal("allowed before the wait")
	}
	if ok, _ := l.AllowEvery("a", every, burst, t0.Add(every)); !ok {
		t.Fatal("refused after the wait")
	}
	// A higher burst applies at once: room for 5 more at the same instant.
	for i := range 5 {
		if ok, _ := l.AllowEvery("a", every, 2*burst, t0.Add(every)); !ok {
			t.Fatalf("request %d under the raised burst refused", i+1)
		}
	}
	if ok, _ := l.AllowEvery("a", every, 2*burst, t0.Add(every)); ok {
		t.Fatal("the raised burst's +1 allowed")
	}
	// From a slow rate to a fast one: the 3 requests of debt are counted
	// at the new rate (3 ms of a 100 ms bucket), not as 3 minutes.
	for range 3 {
		l.AllowEvery("c", time.Minute, 3, t0)
	}
	for i := range 97 {
		if ok, _ := l.AllowEvery("c", time.Millisecond, 100, t0); !ok {
			t.Fatalf("request %d after raising the rate refused", i+1)
		}
	}
	if ok, retry := l.AllowEvery("c", time.Millisecond, 100, t0); ok || retry != time.Millisecond {
		t.Fatalf("after raising the rate, the bucket's +1: ok %v, retry %v; want a wait of 1ms", ok, retry)
	}
}

func TestRetryDelay(t *testing.T) {
	d, ok := RetryDelay(Error(Rule{Name: "x"}, 1500*time.Millisecond))
	if !ok || d != 2*time.Second {
		t.Fatalf("RetryDelay = %v, %v; want 2s", d, ok)
	}
	if _, ok := RetryDelay(connect.NewError(connect.CodeNotFound, "no")); ok {
		t.Fatal("a delay in an error without RetryInfo")
	}
}
