package api

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// SiteSweepReads is what the site sweeper reads: every deployment a
// project keeps, to know which site files are in use.
type SiteSweepReads interface {
	ListProjects(after string, limit int) ([]*eventsv1.Project, error)
	ListSites(project, after string, limit int) ([]*eventsv1.Site, error)
	ListDeployments(project, site, after string, limit int) ([]*eventsv1.Deployment, error)
}

// DefaultSiteBlobGrace is how long an uploaded site file that no
// deployment uses is kept: a deploy uploads its files first, then creates
// the deployment.
const DefaultSiteBlobGrace = time.Hour

// SiteSweeper deletes site files no deployment uses (left by interrupted
// or refused deploys, or by deleted deployments and sites) once older than
// Grace, and archive spool files (cairn-site-*.zip) a crash left in the
// temporary directory. Idempotent: every node may run it.
type SiteSweeper struct {
	Reads  SiteSweepReads
	Blobs  SiteBlobs
	Logger *slog.Logger
	// Grace is DefaultSiteBlobGrace when zero.
	Grace time.Duration
	// SpoolDir is os.TempDir() when empty.
	SpoolDir string
	// Store, when set, is asked whether a project's objects are held
	// (streams.HoldsBucket) before any is deleted.
	Store *streams.Store
}

func (sw *SiteSweeper) grace() time.Duration {
	if sw.Grace > 0 {
		return sw.Grace
	}
	return DefaultSiteBlobGrace
}

// Sweep does one round over every project.
func (sw *SiteSweeper) Sweep(ctx context.Context) error {
	cutoff := time.Now().Add(-sw.grace())
	sw.sweepSpool(cutoff)
	after := ""
	for {
		ps, err := sw.Reads.ListProjects(after, 100)
		if err != nil {
			return fmt.Errorf("list projects: %w", err)
		}
		for _, p := range ps {
			if err := sw.sweepProject(ctx, p.GetId(), cutoff); err != nil {
				return err
			}
		}
		if len(ps) < 100 {
			return nil
		}
		after = ps[len(ps)-1].GetId()
	}
}

// sweepSpool removes archive spools older than cutoff: a request spools
// its zip while it runs, so an old one belongs to a process that died.
func (sw *SiteSweeper) sweepSpool(cutoff time.Time) {
	dir := sw.SpoolDir
	if dir == "" {
		dir = os.TempDir()
	}
	names, _ := filepath.Glob(filepath.Join(dir, "cairn-site-*.zip"))
	for _, n := range names {
		if fi, err := os.Stat(n); err == nil && fi.ModTime().Before(cutoff) {
			if err := os.Remove(n); err == nil {
				sw.Logger.Info("removed a stale site archive spool", "file", n)
			}
		}
	}
}

func (sw *SiteSweeper) sweepProject(ctx context.Context, project string, cutoff time.Time) error {
	if sw.Store != nil {
		// An export reads the project's objects: a later sweep.
		if held, err := sw.Store.ObjectsHeld(ctx, project, time.Now()); err != nil || held {
			return err
		}
	}
	blobs, err := sw.Blobs.List(ctx, project)
	if err != nil {
		return err
	}
	var old []string
	for _, b := range blobs {
		if b.ModTime.Before(cutoff) {
			old = append(old, b.SHA256)
		}
	}
	if len(old) == 0 {
		return nil
	}
	used, err := sw.inUse(project)
	if err != nil {
		return err
	}
	n := 0
	for _, sha := range old {
		if used[sha] {
			continue
		}
		if err := sw.Blobs.Delete(ctx, project, sha); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		sw.Logger.Info("deleted site files no deployment uses", "project", project, "files", n)
	}
	return nil
}

// inUse is the set of files the deployments the project keeps name (a
// failed deployment names none, so what a refused deploy uploaded goes).
func (sw *SiteSweeper) inUse(project string) (map[string]bool, error) {
	used := map[string]bool{}
	afterSite := ""
	for {
		ss, err := sw.Reads.ListSites(project, afterSite, 100)
		if err != nil {
			return nil, fmt.Errorf("list sites of project %s: %w", project, err)
		}
		for _, s := range ss {
			// Few at a time: a manifest holds up to 5,000 files.
			afterDep := ""
			for {
				ds, err := sw.Reads.ListDeployments(project, s.GetId(), afterDep, 10)
				if err != nil {
					return nil, fmt.Errorf("list deployments of site %s: %w", s.GetId(), err)
				}
				for _, d := range ds {
					for _, f := range d.GetFiles() {
						used[f.GetSha256()] = true
					}
				}
				if len(ds) < 10 {
					break
				}
				afterDep = ds[len(ds)-1].GetId()
			}
		}
		if len(ss) < 100 {
			return used, nil
		}
		afterSite = ss[len(ss)-1].GetId()
	}
}
