package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/sites"
)

func sitesCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub, rest, err := subcommand(args, "create", "list", "deploy", "rollback")
	if err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	// "deploy <dir> --site web": the flag package stops at the first
	// positional argument, so move the directory behind the flags.
	if sub == "deploy" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		rest = append(slices.Clone(rest[1:]), rest[0])
	}
	fs := flag.NewFlagSet("sites "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", getenv("CAIRN_PROJECT"), "project id (CAIRN_PROJECT)")
	site := fs.String("site", "", "site id")
	name := fs.String("name", "", "site name (create)")
	spa := fs.Bool("spa", false, "serve index.html for unknown routes (create)")
	activate := fs.Bool("activate", false, "make the deployment the production one (deploy)")
	to := fs.String("to", "", "deployment to activate; default the one before the active one (rollback)")
	r, err := dial(fs, rest, stdout, getenv, false)
	if err != nil {
		return err
	}
	if *project == "" {
		return errors.New("sites: --project is required")
	}
	c := cairnv1connect.NewSitesServiceClient(r.client)
	switch sub {
	case "create":
		res, err := c.CreateSite(r.ctx(ctx), &cairnv1.CreateSiteRequest{ProjectId: *project, SiteId: *site, Name: cmp.Or(*name, *site),
			Settings: &eventsv1.SiteSettings{SpaFallback: *spa}})
		if err != nil {
			return err
		}
		return r.print(res.GetSite())
	case "list":
		res, err := c.ListSites(r.ctx(ctx), &cairnv1.ListSitesRequest{ProjectId: *project, PageSize: 1000})
		if err != nil {
			return err
		}
		for _, s := range res.GetSites() {
			fmt.Fprintf(stdout, "%s\tactive=%s\t%s\n", s.GetId(), cmp.Or(s.GetActiveDeploymentId(), "-"), s.GetUrl())
		}
		return nil
	case "rollback":
		return sitesRollback(ctx, r, c, *project, *site, *to)
	default:
		dir, err := positional(fs, "directory")
		if err != nil {
			return err
		}
		return sitesDeploy(ctx, r, c, *project, *site, dir, *activate)
	}
}

// sitesDeploy uploads only the files the project lacks (content-addressed),
// then records the deployment.
func sitesDeploy(ctx context.Context, r *remote, c cairnv1connect.SitesServiceClient, project, site, dir string, activate bool) error {
	var files []*eventsv1.SiteFile
	paths := map[string]string{} // sha → a local path with that content
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files can be deployed", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		sha := hex.EncodeToString(sum[:])
		files = append(files, &eventsv1.SiteFile{Path: filepath.ToSlash(rel), Sha256: sha, Size: int64(len(b)), ContentType: sites.ContentType(p, b)})
		paths[sha] = p
		return nil
	})
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s has no files", dir)
	}
	shas := make([]string, 0, len(paths))
	for sha := range paths {
		shas = append(shas, sha)
	}
	miss, err := c.MissingFiles(r.ctx(ctx), &cairnv1.MissingFilesRequest{ProjectId: project, Sha256: shas})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "%d files, %d to upload\n", len(files), len(miss.GetSha256()))
	var done atomic.Int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, sha := range miss.GetSha256() {
		g.Go(func() error {
			b, err := os.ReadFile(paths[sha])
			if err != nil {
				return err
			}
			if err := r.putBlob(gctx, project, sha, b); err != nil {
				return fmt.Errorf("upload %s: %w", paths[sha], err)
			}
			n := done.Add(1)
			mu.Lock()
			fmt.Fprintf(r.out, "\ruploaded %d/%d", n, len(miss.GetSha256()))
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(miss.GetSha256()) > 0 {
		fmt.Fprintln(r.out)
	}
	res, err := c.CreateDeployment(r.ctx(ctx), &cairnv1.CreateDeploymentRequest{ProjectId: project, SiteId: site, Files: files, Activate: activate})
	if err != nil {
		return err
	}
	d := res.GetDeployment()
	fmt.Fprintf(r.out, "deployment %s: %d files, %d bytes\npreview:    %s\n", d.GetId(), d.GetFileCount(), d.GetTotalSize(), d.GetPreviewUrl())
	s, err := c.GetSite(r.ctx(ctx), &cairnv1.GetSiteRequest{ProjectId: project, SiteId: site})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "production: %s (active: %s)\n", s.GetSite().GetUrl(), cmp.Or(s.GetSite().GetActiveDeploymentId(), "none"))
	return nil
}

func (r *remote) putBlob(ctx context.Context, project, sha string, b []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url+"/v1/sites/"+project+"/blobs/"+sha, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	res, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%s: %s", res.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// sitesRollback activates --to, or the deployment made before the active one.
func sitesRollback(ctx context.Context, r *remote, c cairnv1connect.SitesServiceClient, project, site, to string) error {
	if to == "" {
		s, err := c.GetSite(r.ctx(ctx), &cairnv1.GetSiteRequest{ProjectId: project, SiteId: site})
		if err != nil {
			return err
		}
		ds, err := c.ListDeployments(r.ctx(ctx), &cairnv1.ListDeploymentsRequest{ProjectId: project, SiteId: site, PageSize: 1000})
		if err != nil {
			return err
		}
		for i, d := range ds.GetDeployments() {
			if d.GetId() == s.GetSite().GetActiveDeploymentId() && i > 0 {
				to = ds.GetDeployments()[i-1].GetId()
			}
		}
		if to == "" {
			return errors.New("sites rollback: no deployment before the active one; name one with --to")
		}
	}
	res, err := c.ActivateDeployment(r.ctx(ctx), &cairnv1.ActivateDeploymentRequest{ProjectId: project, SiteId: site, DeploymentId: to})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "active: %s\n%s\n", res.GetSite().GetActiveDeploymentId(), res.GetSite().GetUrl())
	return nil
}
