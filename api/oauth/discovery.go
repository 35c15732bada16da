package oauth

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/sync/singleflight"
)

// discoveryCache keeps each issuer's discovered provider (endpoints and the
// JWKS key set fetched through it) for a bounded time, and at most max
// issuers. Concurrent misses for one issuer make one request.
type discoveryCache struct {
	ttl   time.Duration
	max   int
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]discoveryEntry
}

type discoveryEntry struct {
	provider *oidc.Provider
	fetched  time.Time
}

func newDiscoveryCache(ttl time.Duration, max int) *discoveryCache {
	return &discoveryCache{ttl: ttl, max: max, entries: map[string]discoveryEntry{}}
}

func (c *discoveryCache) get(ctx context.Context, issuer string, client *http.Client, now time.Time) (*oidc.Provider, error) {
	c.mu.Lock()
	e, ok := c.entries[issuer]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.ttl && !now.Before(e.fetched) {
		return e.provider, nil
	}
	v, err, _ := c.group.Do(issuer, func() (any, error) {
		// The provider keeps the client for its key set; the context only
		// bounds this request.
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
		if err != nil {
			return nil, fmt.Errorf("%w for issuer %q: %w", ErrDiscovery, issuer, err)
		}
		c.put(issuer, discoveryEntry{provider: p, fetched: now})
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*oidc.Provider), nil
}

func (c *discoveryCache) put(issuer string, e discoveryEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[issuer]; !ok && len(c.entries) >= c.max {
		var oldest string
		for k, v := range c.entries {
			if oldest == "" || v.fetched.Before(c.entries[oldest].fetched) {
				oldest = k
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[issuer] = e
}

// len reports the number of cached issuers (tests).
func (c *discoveryCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
