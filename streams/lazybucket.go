package streams

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// lazyBucket is a key-value bucket created (or brought to cfg) on first
// use and kept: an instance that never uses the feature never has it.
type lazyBucket struct {
	js   jetstream.JetStream
	what string // for errors
	cfg  jetstream.KeyValueConfig

	mu sync.Mutex
	kv jetstream.KeyValue
}

func (b *lazyBucket) get(ctx context.Context) (jetstream.KeyValue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.kv != nil {
		return b.kv, nil
	}
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("streams: %s bucket: %w", b.what, err)
	}
	b.kv = kv
	return kv, nil
}
