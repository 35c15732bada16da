package template

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The API calls a plan's changes make, one ordinary write each.

func getAuthReq(c *Conn) *cairnv1.GetAuthSettingsRequest {
	return &cairnv1.GetAuthSettingsRequest{ProjectId: c.project}
}

func updateAuthReq(c *Conn, s *cairnv1.AuthSettings) *cairnv1.UpdateAuthSettingsRequest {
	return &cairnv1.UpdateAuthSettingsRequest{ProjectId: c.project, Settings: s}
}

func (c *Conn) createTeam(ctx context.Context, t Team) error {
	prefs, err := prefsProto(t.Prefs)
	if err != nil {
		return err
	}
	if len(t.Prefs) == 0 {
		prefs = nil
	}
	_, err = c.teams.CreateTeam(ctx, &cairnv1.CreateTeamRequest{ProjectId: c.project, TeamId: t.ID, Name: t.Name, Prefs: prefs})
	return err
}

func (c *Conn) updateTeam(ctx context.Context, t, old Team) error {
	if t.Name != old.Name {
		if _, err := c.teams.UpdateTeam(ctx, &cairnv1.UpdateTeamRequest{ProjectId: c.project, TeamId: t.ID, Name: t.Name}); err != nil {
			return err
		}
	}
	if len(differs(struct{ P map[string]any }{t.Prefs}, struct{ P map[string]any }{old.Prefs})) > 0 {
		prefs, err := prefsProto(t.Prefs)
		if err != nil {
			return err
		}
		_, err = c.teams.UpdateTeamPrefs(ctx, &cairnv1.UpdateTeamPrefsRequest{ProjectId: c.project, TeamId: t.ID, Prefs: prefs})
		return err
	}
	return nil
}

func (c *Conn) deleteTeam(ctx context.Context, id string) error {
	_, err := c.teams.DeleteTeam(ctx, &cairnv1.DeleteTeamRequest{ProjectId: c.project, TeamId: id})
	return err
}

func (c *Conn) createDatabase(ctx context.Context, d Database) error {
	e := enabled(d.Enabled)
	_, err := c.databases.CreateDatabase(ctx, &cairnv1.CreateDatabaseRequest{ProjectId: c.project, DatabaseId: d.ID, Name: d.Name, Enabled: &e})
	return err
}

func (c *Conn) updateDatabase(ctx context.Context, d Database) error {
	e := enabled(d.Enabled)
	_, err := c.databases.UpdateDatabase(ctx, &cairnv1.UpdateDatabaseRequest{ProjectId: c.project, DatabaseId: d.ID, Name: &d.Name, Enabled: &e})
	return err
}

func (c *Conn) deleteDatabase(ctx context.Context, id string) error {
	_, err := c.databases.DeleteDatabase(ctx, &cairnv1.DeleteDatabaseRequest{ProjectId: c.project, DatabaseId: id})
	return err
}

func (c *Conn) createCollection(ctx context.Context, db string, col Collection) error {
	e := enabled(col.Enabled)
	_, err := c.databases.CreateCollection(ctx, &cairnv1.CreateCollectionRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col.ID,
		Name: col.Name, Permissions: col.Permissions, DocumentSecurity: col.DocumentSecurity, Enabled: &e})
	return err
}

func (c *Conn) updateCollection(ctx context.Context, db string, col Collection) error {
	e := enabled(col.Enabled)
	_, err := c.databases.UpdateCollection(ctx, &cairnv1.UpdateCollectionRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col.ID,
		Name: &col.Name, Permissions: &cairnv1.Permissions{Values: col.Permissions}, DocumentSecurity: &col.DocumentSecurity, Enabled: &e})
	return err
}

func (c *Conn) deleteCollection(ctx context.Context, db, id string) error {
	_, err := c.databases.DeleteCollection(ctx, &cairnv1.DeleteCollectionRequest{ProjectId: c.project, DatabaseId: db, CollectionId: id})
	return err
}

func (c *Conn) createAttribute(ctx context.Context, db, col string, a Attribute) error {
	p, err := attributeProto(a)
	if err != nil {
		return err
	}
	_, err = c.databases.CreateAttribute(ctx, &cairnv1.CreateAttributeRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col, Attribute: p})
	return err
}

func (c *Conn) deleteAttribute(ctx context.Context, db, col, key string) error {
	_, err := c.databases.DeleteAttribute(ctx, &cairnv1.DeleteAttributeRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col, Key: key})
	return err
}

func (c *Conn) createIndex(ctx context.Context, db, col string, ix Index) error {
	_, err := c.databases.CreateIndex(ctx, &cairnv1.CreateIndexRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col, Index: indexProto(ix)})
	return err
}

func (c *Conn) deleteIndex(ctx context.Context, db, col, key string) error {
	_, err := c.databases.DeleteIndex(ctx, &cairnv1.DeleteIndexRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col, Key: key})
	return err
}

// pollEvery is how often apply looks at a schema the server is building.
const pollEvery = 20 * time.Millisecond

// waitSchema waits until every attribute and index of the collection is
// available: indexes need available attributes, and apply reports done
// only once the schema is usable. A failed one is an error naming why.
func (c *Conn) waitSchema(ctx context.Context, db, col string) error {
	for {
		res, err := c.databases.GetCollection(ctx, &cairnv1.GetCollectionRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col})
		if err != nil {
			return err
		}
		pending := false
		for _, a := range res.GetCollection().GetAttributes() {
			switch a.GetStatus() {
			case "failed":
				return fmt.Errorf("attribute %s/%s/%s failed: %s", db, col, a.GetKey(), a.GetError())
			case "processing", "deleting":
				pending = true
			}
		}
		for _, ix := range res.GetCollection().GetIndexes() {
			switch ix.GetStatus() {
			case "failed":
				return fmt.Errorf("index %s/%s/%s failed: %s", db, col, ix.GetKey(), ix.GetError())
			case "processing":
				pending = true
			}
		}
		if !pending {
			return nil
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return fmt.Errorf("waiting for the schema of %s/%s: %w", db, col, err)
		}
	}
}

// waitAttributeGone waits until a deleted attribute has left the schema,
// so that one with the same key can be created.
func (c *Conn) waitAttributeGone(ctx context.Context, db, col, key string) error {
	for {
		_, err := c.databases.GetAttribute(ctx, &cairnv1.GetAttributeRequest{ProjectId: c.project, DatabaseId: db, CollectionId: col, Key: key})
		if connect.CodeOf(err) == connect.CodeNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return fmt.Errorf("waiting for attribute %s/%s/%s to be deleted: %w", db, col, key, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Conn) createBucket(ctx context.Context, b Bucket) error {
	e := enabled(b.Enabled)
	_, err := c.storage.CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: c.project, BucketId: b.ID, Name: b.Name, Permissions: b.Permissions,
		FileSecurity: b.FileSecurity, Enabled: &e, MaximumFileSize: b.MaximumFileSize, AllowedFileExtensions: b.AllowedFileExtensions,
		Compression: compressionProto(b.Compression), Encryption: b.Encryption})
	return err
}

func (c *Conn) updateBucket(ctx context.Context, b Bucket) error {
	e := enabled(b.Enabled)
	_, err := c.storage.UpdateBucket(ctx, &cairnv1.UpdateBucketRequest{ProjectId: c.project, BucketId: b.ID, Name: &b.Name,
		Permissions: &cairnv1.Permissions{Values: b.Permissions}, FileSecurity: &b.FileSecurity, Enabled: &e, MaximumFileSize: &b.MaximumFileSize,
		AllowedFileExtensions: &cairnv1.ExtensionList{Values: b.AllowedFileExtensions}, Compression: compressionProto(b.Compression), Encryption: &b.Encryption})
	return err
}

func (c *Conn) deleteBucket(ctx context.Context, id string) error {
	_, err := c.storage.DeleteBucket(ctx, &cairnv1.DeleteBucketRequest{ProjectId: c.project, BucketId: id})
	return err
}

func (c *Conn) createFunction(ctx context.Context, fn Function, getenv func(string) string) error {
	e := enabled(fn.Enabled)
	_, err := c.functions.CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: c.project, FunctionId: fn.ID, Name: fn.Name, Runtime: fn.Runtime,
		TimeoutSeconds: fn.Timeout, Execute: fn.Execute, Scopes: fn.Scopes, Events: fn.Events, Schedule: fn.Schedule, Enabled: &e,
		Variables: variablesProto(fn.Variables, getenv), MaxConcurrency: fn.MaxConcurrency})
	return err
}

func (c *Conn) updateFunction(ctx context.Context, fn Function, getenv func(string) string) error {
	e := enabled(fn.Enabled)
	_, err := c.functions.UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: c.project, FunctionId: fn.ID, Name: &fn.Name,
		TimeoutSeconds: &fn.Timeout, Execute: &cairnv1.StringList{Values: fn.Execute}, Scopes: &cairnv1.StringList{Values: fn.Scopes},
		Events: &cairnv1.StringList{Values: fn.Events}, Schedule: &fn.Schedule, Enabled: &e,
		Variables: &cairnv1.VariableList{Values: variablesProto(fn.Variables, getenv)}, MaxConcurrency: &fn.MaxConcurrency})
	return err
}

// rpcCodeBytes is the largest code deployed through the RPC: the server's
// request limit (--max-request-bytes) is 1 MiB by default, so larger code
// goes over the plain HTTP route, as `cairn functions deploy` sends it.
const rpcCodeBytes = 768 << 10

func (c *Conn) deployFunction(ctx context.Context, id string, code []byte) error {
	var d *cairnv1.FunctionDeployment
	if len(code) <= rpcCodeBytes {
		res, err := c.functions.CreateFunctionDeployment(ctx, &cairnv1.CreateFunctionDeploymentRequest{ProjectId: c.project, FunctionId: id, Code: code, Activate: true})
		if err != nil {
			return err
		}
		d = res.GetDeployment()
	} else {
		var err error
		if d, err = c.uploadDeployment(ctx, id, code); err != nil {
			return err
		}
	}
	if d.GetStatus() != "ready" {
		return fmt.Errorf("deployment %s of function %s is %s: %s", d.GetId(), id, d.GetStatus(), d.GetError())
	}
	return nil
}

// uploadDeployment sends code as the body of the deployments route.
func (c *Conn) uploadDeployment(ctx context.Context, id string, code []byte) (*cairnv1.FunctionDeployment, error) {
	u := c.baseURL + "/v1/projects/" + url.PathEscape(c.project) + "/functions/" + url.PathEscape(id) + "/deployments?activate=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(code))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("upload %d bytes of code: %s: %s", len(code), res.Status, bytes.TrimSpace(body))
	}
	d := &cairnv1.FunctionDeployment{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, d); err != nil {
		return nil, fmt.Errorf("upload code: the answer: %w", err)
	}
	return d, nil
}

func (c *Conn) deleteFunction(ctx context.Context, id string) error {
	_, err := c.functions.DeleteFunction(ctx, &cairnv1.DeleteFunctionRequest{ProjectId: c.project, FunctionId: id})
	return err
}

func (c *Conn) createSite(ctx context.Context, s Site) error {
	_, err := c.sites.CreateSite(ctx, &cairnv1.CreateSiteRequest{ProjectId: c.project, SiteId: s.ID, Name: s.Name, Settings: siteSettingsProto(s.Settings)})
	return err
}

func (c *Conn) updateSite(ctx context.Context, s Site) error {
	_, err := c.sites.UpdateSite(ctx, &cairnv1.UpdateSiteRequest{ProjectId: c.project, SiteId: s.ID, Name: &s.Name, Settings: siteSettingsProto(s.Settings)})
	return err
}

func (c *Conn) deleteSite(ctx context.Context, id string) error {
	_, err := c.sites.DeleteSite(ctx, &cairnv1.DeleteSiteRequest{ProjectId: c.project, SiteId: id})
	return err
}

// createWebhook prints the signing secret, which the server shows once.
func (c *Conn) createWebhook(ctx context.Context, w Webhook, log io.Writer) error {
	e := enabled(w.Enabled)
	res, err := c.webhooks.CreateWebhook(ctx, &cairnv1.CreateWebhookRequest{ProjectId: c.project, WebhookId: w.ID, Name: w.Name, Url: w.URL,
		Events: &cairnv1.WebhookEvents{Events: w.Events}, Enabled: &e})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(log, "    webhook %s signing secret (shown once): %s\n", w.ID, res.GetSecret())
	return err
}

func (c *Conn) updateWebhook(ctx context.Context, w Webhook) error {
	e := enabled(w.Enabled)
	_, err := c.webhooks.UpdateWebhook(ctx, &cairnv1.UpdateWebhookRequest{ProjectId: c.project, WebhookId: w.ID, Name: &w.Name, Url: &w.URL,
		Events: &cairnv1.WebhookEvents{Events: w.Events}, Enabled: &e})
	return err
}

func (c *Conn) deleteWebhook(ctx context.Context, id string) error {
	_, err := c.webhooks.DeleteWebhook(ctx, &cairnv1.DeleteWebhookRequest{ProjectId: c.project, WebhookId: id})
	return err
}
