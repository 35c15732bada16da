package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/sites"
)

// siteUsageTTL is how long a node trusts its count of a project's site
// file bytes before listing them again (other nodes' uploads show up
// within it; this node's own are added as they are stored).
const siteUsageTTL = 30 * time.Second

// siteUsage caches the bytes of each project's site files: they live in
// the object store without events, so the storage read model does not
// count them.
type siteUsage struct {
	mu sync.Mutex
	m  map[string]siteUse
}

type siteUse struct {
	bytes int64
	at    time.Time
}

// siteBytes returns the bytes of project's site files.
func (s *Server) siteBytes(ctx context.Context, project string) (int64, error) {
	if s.blobs == nil {
		return 0, nil
	}
	s.siteUse.mu.Lock()
	u, ok := s.siteUse.m[project]
	s.siteUse.mu.Unlock()
	if ok && time.Since(u.at) < siteUsageTTL {
		return u.bytes, nil
	}
	n, err := s.blobs.Usage(ctx, project)
	if err != nil {
		return 0, err
	}
	s.siteUse.mu.Lock()
	if s.siteUse.m == nil {
		s.siteUse.m = map[string]siteUse{}
	}
	s.siteUse.m[project] = siteUse{bytes: n, at: time.Now()}
	s.siteUse.mu.Unlock()
	return n, nil
}

// addSiteBytes counts n more (or, negative, fewer) bytes of site files.
func (s *Server) addSiteBytes(project string, n int64) {
	s.siteUse.mu.Lock()
	defer s.siteUse.mu.Unlock()
	if u, ok := s.siteUse.m[project]; ok {
		u.bytes += n
		s.siteUse.m[project] = u
	}
}

// putSiteBlob stores a site file after checking the project's storage
// quota, which site files count against as files do.
func (s *Server) putSiteBlob(ctx context.Context, project, sha string, data []byte) error {
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		return fmt.Errorf("%w: got %x", sites.ErrHashMismatch, sum)
	}
	if s.hasQuota(project) {
		missing, err := s.blobs.Missing(ctx, project, []string{sha})
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil // stored once per project: no new bytes
		}
		if err := s.checkQuota(ctx, project, nil, int64(len(data)), false); err != nil {
			return err
		}
	}
	if err := s.blobs.Put(ctx, project, sha, bytes.NewReader(data)); err != nil {
		return err
	}
	s.addSiteBytes(project, int64(len(data)))
	return nil
}

// hasQuota reports whether the project's storage is limited (as
// checkQuota resolves it).
func (s *Server) hasQuota(project string) bool {
	if p, err := s.reads.Project(project); err == nil && p.GetLimits().GetMaxStorageBytes() > 0 {
		return true
	}
	return s.storage.DefaultQuota > 0
}
