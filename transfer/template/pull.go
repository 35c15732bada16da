package template

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

const pageSize = 1000

// Pull reads the project's shape into a File. Function code paths are not
// known to the server (it keeps only the built code), and secrets are
// named by default environment variable names; KeepLocal carries both over
// from the file being refreshed.
func Pull(ctx context.Context, c *Conn) (*File, error) {
	f := &File{Version: Version}
	steps := []struct {
		what string
		do   func(context.Context, *File) error
	}{
		{"auth settings", c.pullAuth},
		{"teams", c.pullTeams},
		{"databases", c.pullDatabases},
		{"buckets", c.pullBuckets},
		{"functions", c.pullFunctions},
		{"sites", c.pullSites},
		{"webhooks", c.pullWebhooks},
	}
	for _, s := range steps {
		if err := s.do(ctx, f); err != nil {
			return nil, fmt.Errorf("pull %s of project %s: %w", s.what, c.project, err)
		}
	}
	return f, nil
}

// Default environment variable names of secrets a pulled file refers to.
func smtpPasswordEnv() string { return "SMTP_PASSWORD" }
func oauthSecretEnv(id string) string {
	return "OAUTH_" + strings.ToUpper(strings.ReplaceAll(id, "-", "_")) + "_CLIENT_SECRET"
}

func (c *Conn) pullAuth(ctx context.Context, f *File) error {
	res, err := c.users.GetAuthSettings(ctx, &cairnv1.GetAuthSettingsRequest{ProjectId: c.project})
	if err != nil {
		return err
	}
	s := res.GetSettings()
	f.Platforms = s.GetAllowedOrigins()
	a := &Auth{MaxSessions: s.GetMaxSessions(), PasswordMinLength: s.GetPasswordMinLength(), PasswordCheckCommon: s.GetPasswordCheckCommon(),
		DisabledMethods: s.GetDisabledMethods(), DisableLocalhostOrigins: s.GetDisableLocalhostOrigins()}
	if d := s.GetSessionDuration(); d != nil {
		a.SessionDuration = formatDuration(d.AsDuration())
	}
	if sm := s.GetSmtp(); sm != nil {
		a.SMTP = &SMTP{Host: sm.GetHost(), Port: sm.GetPort(), Username: sm.GetUsername(), SenderEmail: sm.GetSenderEmail(),
			SenderName: sm.GetSenderName(), Security: sm.GetSecurity()}
		if sm.GetPasswordSet() {
			a.SMTP.PasswordEnv = smtpPasswordEnv()
		}
	}
	for _, o := range s.GetOauthProviders() {
		p := OAuthProvider{ID: o.GetId(), Kind: o.GetKind(), ClientID: o.GetClientId(), IssuerURL: o.GetIssuerUrl(), Scopes: o.GetScopes(), Disabled: o.GetDisabled()}
		if o.GetClientSecretSet() {
			p.ClientSecretEnv = oauthSecretEnv(o.GetId())
		}
		a.OAuthProviders = append(a.OAuthProviders, p)
	}
	if !isZeroAuth(a) {
		f.Auth = a
	}
	return nil
}

// formatDuration writes whole hours as "720h" rather than "720h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func isZeroAuth(a *Auth) bool {
	return a.SessionDuration == "" && a.MaxSessions == 0 && a.PasswordMinLength == 0 && !a.PasswordCheckCommon &&
		len(a.DisabledMethods) == 0 && !a.DisableLocalhostOrigins && a.SMTP == nil && len(a.OAuthProviders) == 0
}

func (c *Conn) pullTeams(ctx context.Context, f *File) error {
	req := &cairnv1.ListTeamsRequest{ProjectId: c.project, PageSize: pageSize}
	for {
		res, err := c.teams.ListTeams(ctx, req)
		if err != nil {
			return err
		}
		for _, t := range res.GetTeams() {
			team := Team{ID: t.GetId(), Name: t.GetName()}
			if p := t.GetPrefs().AsMap(); len(p) > 0 {
				team.Prefs = p
			}
			f.Teams = append(f.Teams, team)
		}
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.SortFunc(f.Teams, func(a, b Team) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

func (c *Conn) pullDatabases(ctx context.Context, f *File) error {
	req := &cairnv1.ListDatabasesRequest{ProjectId: c.project, Limit: pageSize}
	for {
		res, err := c.databases.ListDatabases(ctx, req)
		if err != nil {
			return err
		}
		for _, d := range res.GetDatabases() {
			db := Database{ID: d.GetId(), Name: d.GetName(), Enabled: enabledFlag(d.GetEnabled())}
			if db.Collections, err = c.pullCollections(ctx, d.GetId()); err != nil {
				return fmt.Errorf("database %s: %w", d.GetId(), err)
			}
			f.Databases = append(f.Databases, db)
		}
		if len(res.GetDatabases()) < pageSize {
			break
		}
		req.CursorAfter = res.GetDatabases()[len(res.GetDatabases())-1].GetId()
	}
	slices.SortFunc(f.Databases, func(a, b Database) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

func (c *Conn) pullCollections(ctx context.Context, db string) ([]Collection, error) {
	var out []Collection
	req := &cairnv1.ListCollectionsRequest{ProjectId: c.project, DatabaseId: db, Limit: pageSize}
	for {
		res, err := c.databases.ListCollections(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, col := range res.GetCollections() {
			out = append(out, collectionFrom(col))
		}
		if len(res.GetCollections()) < pageSize {
			break
		}
		req.CursorAfter = res.GetCollections()[len(res.GetCollections())-1].GetId()
	}
	slices.SortFunc(out, func(a, b Collection) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func collectionFrom(col *cairnv1.Collection) Collection {
	out := Collection{ID: col.GetId(), Name: col.GetName(), Permissions: col.GetPermissions(), DocumentSecurity: col.GetDocumentSecurity(),
		Enabled: enabledFlag(col.GetEnabled())}
	for _, a := range col.GetAttributes() {
		if a.GetStatus() == "deleting" {
			continue
		}
		out.Attributes = append(out.Attributes, attributeFrom(a))
	}
	for _, ix := range col.GetIndexes() {
		out.Indexes = append(out.Indexes, indexFrom(ix))
	}
	return out
}

// attributeFrom is the file form of an attribute: the widest bounds, which
// the server fills in, are left out.
func attributeFrom(a *cairnv1.Attribute) Attribute {
	out := Attribute{Key: a.GetKey(), Type: attributeTypeName(a.GetType()), Required: a.GetRequired(), Array: a.GetArray(), Size: a.GetSize(),
		Elements: a.GetElements()}
	bound := func(v float64, widest float64) *float64 {
		if v == widest {
			return nil
		}
		return &v
	}
	switch a.GetType() {
	case cairnv1.AttributeType_ATTRIBUTE_TYPE_INTEGER:
		if a.IntMin != nil {
			out.Min = bound(float64(a.GetIntMin()), -(1<<53 - 1))
		}
		if a.IntMax != nil {
			out.Max = bound(float64(a.GetIntMax()), 1<<53-1)
		}
	case cairnv1.AttributeType_ATTRIBUTE_TYPE_FLOAT:
		if a.FloatMin != nil {
			out.Min = bound(a.GetFloatMin(), -math.MaxFloat64)
		}
		if a.FloatMax != nil {
			out.Max = bound(a.GetFloatMax(), math.MaxFloat64)
		}
	}
	if a.GetDefault() != nil {
		out.Default = a.GetDefault().AsInterface()
	}
	return out
}

func indexFrom(ix *cairnv1.Index) Index {
	out := Index{Key: ix.GetKey(), Type: indexTypeName(ix.GetType()), Attributes: ix.GetAttributes()}
	if slices.Contains(ix.GetDesc(), true) {
		out.Desc = ix.GetDesc()
	}
	return out
}

func attributeTypeName(t cairnv1.AttributeType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "ATTRIBUTE_TYPE_"))
}

func indexTypeName(t cairnv1.IndexType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "INDEX_TYPE_"))
}

func compressionName(c cairnv1.Compression) string {
	if c == cairnv1.Compression_COMPRESSION_UNSPECIFIED || c == cairnv1.Compression_COMPRESSION_NONE {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(c.String(), "COMPRESSION_"))
}

func (c *Conn) pullBuckets(ctx context.Context, f *File) error {
	req := &cairnv1.ListBucketsRequest{ProjectId: c.project, Limit: pageSize}
	for {
		res, err := c.storage.ListBuckets(ctx, req)
		if err != nil {
			return err
		}
		for _, b := range res.GetBuckets() {
			f.Buckets = append(f.Buckets, Bucket{ID: b.GetId(), Name: b.GetName(), Permissions: b.GetPermissions(), FileSecurity: b.GetFileSecurity(),
				Enabled: enabledFlag(b.GetEnabled()), MaximumFileSize: b.GetMaximumFileSize(), AllowedFileExtensions: b.GetAllowedFileExtensions(),
				Compression: compressionName(b.GetCompression()), Encryption: b.GetEncryption()})
		}
		if len(res.GetBuckets()) < pageSize {
			break
		}
		req.CursorAfter = res.GetBuckets()[len(res.GetBuckets())-1].GetId()
	}
	slices.SortFunc(f.Buckets, func(a, b Bucket) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

func (c *Conn) pullFunctions(ctx context.Context, f *File) error {
	req := &cairnv1.ListFunctionsRequest{ProjectId: c.project, Limit: pageSize}
	for {
		res, err := c.functions.ListFunctions(ctx, req)
		if err != nil {
			return err
		}
		for _, fn := range res.GetFunctions() {
			out := Function{ID: fn.GetId(), Name: fn.GetName(), Runtime: fn.GetRuntime(), Timeout: fn.GetTimeoutSeconds(), Execute: fn.GetExecute(),
				Scopes: fn.GetScopes(), Events: fn.GetEvents(), Schedule: fn.GetSchedule(), Enabled: enabledFlag(fn.GetEnabled()),
				MaxConcurrency: fn.GetMaxConcurrency()}
			for _, v := range fn.GetVariables() {
				if v.GetSecret() {
					out.Variables = append(out.Variables, Variable{Key: v.GetKey(), SecretEnv: v.GetKey()})
				} else {
					out.Variables = append(out.Variables, Variable{Key: v.GetKey(), Value: v.GetValue()})
				}
			}
			if d := fn.GetActiveDeploymentId(); d != "" {
				dep, err := c.functions.GetFunctionDeployment(ctx, &cairnv1.GetFunctionDeploymentRequest{ProjectId: c.project, FunctionId: fn.GetId(), DeploymentId: d})
				if err != nil {
					return fmt.Errorf("function %s: active deployment: %w", fn.GetId(), err)
				}
				out.deployedSHA = dep.GetDeployment().GetSha256()
			}
			f.Functions = append(f.Functions, out)
		}
		if len(res.GetFunctions()) < pageSize {
			break
		}
		req.CursorAfter = res.GetFunctions()[len(res.GetFunctions())-1].GetId()
	}
	slices.SortFunc(f.Functions, func(a, b Function) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

func (c *Conn) pullSites(ctx context.Context, f *File) error {
	req := &cairnv1.ListSitesRequest{ProjectId: c.project, PageSize: pageSize}
	for {
		res, err := c.sites.ListSites(ctx, req)
		if err != nil {
			return err
		}
		for _, s := range res.GetSites() {
			f.Sites = append(f.Sites, Site{ID: s.GetId(), Name: s.GetName(), Settings: siteSettingsFrom(s.GetSettings())})
		}
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.SortFunc(f.Sites, func(a, b Site) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

func siteSettingsFrom(s *eventsv1.SiteSettings) *SiteSettings {
	if s == nil {
		return nil
	}
	out := &SiteSettings{SPAFallback: s.GetSpaFallback(), NotFoundPage: s.GetNotFoundPage(), Domains: s.GetDomains()}
	switch s.GetTrailingSlash() {
	case eventsv1.TrailingSlash_TRAILING_SLASH_ADD:
		out.TrailingSlash = "add"
	case eventsv1.TrailingSlash_TRAILING_SLASH_REMOVE:
		out.TrailingSlash = "remove"
	}
	for _, h := range s.GetHeaders() {
		out.Headers = append(out.Headers, HeaderRule{Pattern: h.GetPattern(), Name: h.GetName(), Value: h.GetValue()})
	}
	for _, r := range s.GetRedirects() {
		out.Redirects = append(out.Redirects, Redirect{From: r.GetFrom(), To: r.GetTo(), Status: r.GetStatus()})
	}
	if reflect.DeepEqual(*out, SiteSettings{}) {
		return nil
	}
	return out
}

func (c *Conn) pullWebhooks(ctx context.Context, f *File) error {
	req := &cairnv1.ListWebhooksRequest{ProjectId: c.project, PageSize: pageSize}
	for {
		res, err := c.webhooks.ListWebhooks(ctx, req)
		if err != nil {
			return err
		}
		for _, w := range res.GetWebhooks() {
			f.Webhooks = append(f.Webhooks, Webhook{ID: w.GetId(), Name: w.GetName(), URL: w.GetUrl(), Events: w.GetEvents(), Enabled: enabledFlag(w.GetEnabled())})
		}
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.SortFunc(f.Webhooks, func(a, b Webhook) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

// KeepLocal carries over into a pulled file what only the local file
// knows: function code paths and the names of secrets' environment
// variables, for the resources both still have.
func KeepLocal(pulled, local *File) {
	if local == nil {
		return
	}
	if pulled.Auth != nil && local.Auth != nil {
		if pulled.Auth.SMTP != nil && local.Auth.SMTP != nil && pulled.Auth.SMTP.PasswordEnv != "" && local.Auth.SMTP.PasswordEnv != "" {
			pulled.Auth.SMTP.PasswordEnv = local.Auth.SMTP.PasswordEnv
		}
		for i, p := range pulled.Auth.OAuthProviders {
			for _, l := range local.Auth.OAuthProviders {
				if l.ID == p.ID && p.ClientSecretEnv != "" && l.ClientSecretEnv != "" {
					pulled.Auth.OAuthProviders[i].ClientSecretEnv = l.ClientSecretEnv
				}
			}
		}
	}
	for i, fn := range pulled.Functions {
		for _, l := range local.Functions {
			if l.ID != fn.ID {
				continue
			}
			pulled.Functions[i].Code = l.Code
			for j, v := range fn.Variables {
				for _, lv := range l.Variables {
					if lv.Key == v.Key && v.SecretEnv != "" && lv.SecretEnv != "" {
						pulled.Functions[i].Variables[j].SecretEnv = lv.SecretEnv
					}
				}
			}
		}
	}
}
