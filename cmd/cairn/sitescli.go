package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/sites"
)

var siteCols = cols("ID", "id", "ACTIVE", "activeDeploymentId", "URL", "url")

func sitesCmd(e *cliEnv) *cobra.Command {
	var site, name, to string
	var spa, activate bool
	sites := func(r *remote) cairnv1connect.SitesServiceClient {
		return cairnv1connect.NewSitesServiceClient(r.client)
	}
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a static site",
		Example: "  cairn sites create --project acme --site web --spa",
		Args:    cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			res, err := sites(r).CreateSite(r.ctx(ctx), &cairnv1.CreateSiteRequest{ProjectId: project, SiteId: site, Name: cmp.Or(name, site),
				Settings: &eventsv1.SiteSettings{SpaFallback: spa}})
			if err != nil {
				return err
			}
			return e.printOne(siteCols, res.GetSite())
		}),
	}
	create.Flags().StringVar(&name, "name", "", "site name (default the id)")
	create.Flags().BoolVar(&spa, "spa", false, "serve index.html for unknown routes")
	list := &cobra.Command{
		Use: "list", Short: "List a project's sites", Example: "  cairn sites list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			res, err := sites(r).ListSites(r.ctx(ctx), &cairnv1.ListSitesRequest{ProjectId: project, PageSize: 1000})
			if err != nil {
				return err
			}
			all := make([]proto.Message, 0, len(res.GetSites()))
			for _, s := range res.GetSites() {
				all = append(all, s)
			}
			return e.printList(siteCols, all)
		}),
	}
	deploy := &cobra.Command{
		Use:   "deploy DIR",
		Short: "Upload a directory as a new deployment (only files the project lacks travel)",
		Example: `  cairn sites deploy --project acme --site web --activate ./dist
  cairn sites deploy ./dist --project acme --site web     # a preview; activate later`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error {
				project, err := e.needProject()
				if err != nil {
					return err
				}
				return e.sitesDeploy(ctx, r, sites(r), project, site, args[0], activate)
			})(cmd, args)
		},
	}
	deploy.Flags().BoolVar(&activate, "activate", false, "make the deployment the production one")
	rollback := &cobra.Command{
		Use:     "rollback",
		Short:   "Activate the previous deployment, or --to one",
		Example: "  cairn sites rollback --project acme --site web\n  cairn sites rollback --project acme --site web --to 01J…",
		Args:    cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			return e.sitesRollback(ctx, r, sites(r), project, site, to)
		}),
	}
	rollback.Flags().StringVar(&to, "to", "", "deployment to activate; default the one before the active one")
	g := group("sites", "Create static sites, deploy them, roll them back", "A site is served at <site>.<project>.<--sites-domain> with its project's API same-origin.",
		create, list, deploy, rollback)
	g.PersistentFlags().StringVar(&site, "site", "", "site id")
	return e.projectFlag(e.clientFlags(g))
}

// sitesDeploy uploads only the files the project lacks (content-addressed),
// then records the deployment.
func (e *cliEnv) sitesDeploy(ctx context.Context, r *remote, c cairnv1connect.SitesServiceClient, project, site, dir string, activate bool) error {
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
	// The report is for a person: on stdout with a table, on stderr when
	// stdout is a script's JSON.
	report := e.stderr
	if e.human() {
		report = e.stdout
	}
	tty := isTerminal(e.stderr)
	fmt.Fprintf(report, "%d files, %d to upload\n", len(files), len(miss.GetSha256()))
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
			if tty {
				mu.Lock()
				fmt.Fprintf(e.stderr, "\ruploaded %d/%d", n, len(miss.GetSha256()))
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if tty && len(miss.GetSha256()) > 0 {
		fmt.Fprintln(e.stderr)
	}
	res, err := c.CreateDeployment(r.ctx(ctx), &cairnv1.CreateDeploymentRequest{ProjectId: project, SiteId: site, Files: files, Activate: activate})
	if err != nil {
		return err
	}
	d := res.GetDeployment()
	s, err := c.GetSite(r.ctx(ctx), &cairnv1.GetSiteRequest{ProjectId: project, SiteId: site})
	if err != nil {
		return err
	}
	if !e.human() {
		d.Files = nil // the caller has them; keep the answer short
		return e.printOne(nil, d)
	}
	fmt.Fprintf(e.stdout, "deployment %s: %d files, %d bytes\npreview:    %s\n", d.GetId(), d.GetFileCount(), d.GetTotalSize(), d.GetPreviewUrl())
	fmt.Fprintf(e.stdout, "production: %s (active: %s)\n", s.GetSite().GetUrl(), cmp.Or(s.GetSite().GetActiveDeploymentId(), "none"))
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
func (e *cliEnv) sitesRollback(ctx context.Context, r *remote, c cairnv1connect.SitesServiceClient, project, site, to string) error {
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
	return e.printOne(siteCols, res.GetSite())
}
