package main

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// allScopes is every scope: isolation must hold even for the most powerful key.
func allScopes() []string {
	var out []string
	for _, s := range access.Scopes {
		out = append(out, string(s))
	}
	return out
}

// TestCrossProjectIsolation is the cross-project matrix: every endpoint that
// takes a project is called with another project's all-scopes key and must
// be refused, and the victim's data must be unchanged afterwards. Every new
// endpoint joins this table.
func TestCrossProjectIsolation(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	op, _ := as(ctx, testAdminKey)
	for _, id := range []string{"victim", "intruder"} {
		if _, err := in.projects().CreateProject(op, &cairnv1.CreateProjectRequest{ProjectId: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	victimKey, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "victim", Name: "v", Scopes: &cairnv1.Scopes{Scopes: allScopes()}})
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := in.keys().CreateKey(op, &cairnv1.CreateKeyRequest{ProjectId: "intruder", Name: "i", Scopes: &cairnv1.Scopes{Scopes: allScopes()}})
	if err != nil {
		t.Fatal(err)
	}
	vid := victimKey.GetKey().GetId()
	name := "pwned"
	// AccountService is for end users: the project is the Cairn-Project
	// header's (or the session's). The intruder names the victim with its
	// own API key, and with a session of one of its own end users.
	ig, _ := guest(ctx, "intruder", "")
	anon, err := in.account().CreateAnonymousSession(ig, &cairnv1.CreateAnonymousSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	intruderUser := anon.GetSecret()
	asVictim := func(ctx context.Context, credential string) context.Context {
		c, _ := guest(ctx, "victim", credential)
		return c
	}

	scenarios := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"KeysService.CreateKey", func(ctx context.Context) error {
			_, err := in.keys().CreateKey(ctx, &cairnv1.CreateKeyRequest{ProjectId: "victim", Name: "x", Scopes: &cairnv1.Scopes{}})
			return err
		}},
		{"KeysService.GetKey", func(ctx context.Context) error {
			_, err := in.keys().GetKey(ctx, &cairnv1.GetKeyRequest{ProjectId: "victim", KeyId: vid})
			return err
		}},
		{"KeysService.ListKeys", func(ctx context.Context) error {
			_, err := in.keys().ListKeys(ctx, &cairnv1.ListKeysRequest{ProjectId: "victim"})
			return err
		}},
		{"KeysService.UpdateKey", func(ctx context.Context) error {
			_, err := in.keys().UpdateKey(ctx, &cairnv1.UpdateKeyRequest{ProjectId: "victim", KeyId: vid, Name: &name})
			return err
		}},
		{"KeysService.DeleteKey", func(ctx context.Context) error {
			_, err := in.keys().DeleteKey(ctx, &cairnv1.DeleteKeyRequest{ProjectId: "victim", KeyId: vid})
			return err
		}},
		{"EventsService.ListEvents", func(ctx context.Context) error {
			_, err := in.events().ListEvents(ctx, &cairnv1.ListEventsRequest{ProjectId: "victim"})
			return err
		}},
		{"EventsService.ListEvents system log", func(ctx context.Context) error {
			_, err := in.events().ListEvents(ctx, &cairnv1.ListEventsRequest{})
			return err
		}},
		{"EventsService.StreamEvents", func(ctx context.Context) error {
			s, err := in.events().StreamEvents(ctx, &cairnv1.StreamEventsRequest{ProjectId: "victim", StartSeq: 1})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Receive()
			return err
		}},
		{"SitesService.CreateSite", func(ctx context.Context) error {
			_, err := in.sites().CreateSite(ctx, &cairnv1.CreateSiteRequest{ProjectId: "victim", SiteId: "x", Name: "x"})
			return err
		}},
		{"SitesService.GetSite", func(ctx context.Context) error {
			_, err := in.sites().GetSite(ctx, &cairnv1.GetSiteRequest{ProjectId: "victim", SiteId: "web"})
			return err
		}},
		{"SitesService.ListSites", func(ctx context.Context) error {
			_, err := in.sites().ListSites(ctx, &cairnv1.ListSitesRequest{ProjectId: "victim"})
			return err
		}},
		{"SitesService.UpdateSite", func(ctx context.Context) error {
			_, err := in.sites().UpdateSite(ctx, &cairnv1.UpdateSiteRequest{ProjectId: "victim", SiteId: "web", Name: &name})
			return err
		}},
		{"SitesService.DeleteSite", func(ctx context.Context) error {
			_, err := in.sites().DeleteSite(ctx, &cairnv1.DeleteSiteRequest{ProjectId: "victim", SiteId: "web"})
			return err
		}},
		{"SitesService.MissingFiles", func(ctx context.Context) error {
			_, err := in.sites().MissingFiles(ctx, &cairnv1.MissingFilesRequest{ProjectId: "victim", Sha256: []string{strings.Repeat("a", 64)}})
			return err
		}},
		{"SitesService.CreateDeployment", func(ctx context.Context) error {
			_, err := in.sites().CreateDeployment(ctx, &cairnv1.CreateDeploymentRequest{ProjectId: "victim", SiteId: "web",
				Files: []*eventsv1.SiteFile{{Path: "index.html", Sha256: strings.Repeat("a", 64), Size: 1}}})
			return err
		}},
		{"SitesService.GetDeployment", func(ctx context.Context) error {
			_, err := in.sites().GetDeployment(ctx, &cairnv1.GetDeploymentRequest{ProjectId: "victim", SiteId: "web", DeploymentId: "d"})
			return err
		}},
		{"SitesService.ListDeployments", func(ctx context.Context) error {
			_, err := in.sites().ListDeployments(ctx, &cairnv1.ListDeploymentsRequest{ProjectId: "victim", SiteId: "web"})
			return err
		}},
		{"SitesService.ActivateDeployment", func(ctx context.Context) error {
			_, err := in.sites().ActivateDeployment(ctx, &cairnv1.ActivateDeploymentRequest{ProjectId: "victim", SiteId: "web", DeploymentId: "d"})
			return err
		}},
		{"SitesService.DeleteDeployment", func(ctx context.Context) error {
			_, err := in.sites().DeleteDeployment(ctx, &cairnv1.DeleteDeploymentRequest{ProjectId: "victim", SiteId: "web", DeploymentId: "d"})
			return err
		}},
		{"AccountService.CreateOAuth2Token", func(ctx context.Context) error {
			_, err := in.account().CreateOAuth2Token(asVictim(ctx, intruder.GetSecret()), &cairnv1.CreateOAuth2TokenRequest{ProviderId: "idp", SuccessUrl: "https://app.example/", FailureUrl: "https://app.example/"})
			return err
		}},
		{"AccountService.CreateOAuth2Token intruder session", func(ctx context.Context) error {
			_, err := in.account().CreateOAuth2Token(asVictim(ctx, intruderUser), &cairnv1.CreateOAuth2TokenRequest{ProviderId: "idp", SuccessUrl: "https://app.example/", FailureUrl: "https://app.example/"})
			return err
		}},
		{"AccountService.ListIdentities", func(ctx context.Context) error {
			_, err := in.account().ListIdentities(asVictim(ctx, intruder.GetSecret()), &cairnv1.ListIdentitiesRequest{})
			return err
		}},
		{"AccountService.ListIdentities intruder session", func(ctx context.Context) error {
			_, err := in.account().ListIdentities(asVictim(ctx, intruderUser), &cairnv1.ListIdentitiesRequest{})
			return err
		}},
		{"AccountService.DeleteIdentity", func(ctx context.Context) error {
			_, err := in.account().DeleteIdentity(asVictim(ctx, intruder.GetSecret()), &cairnv1.DeleteIdentityRequest{ProviderId: "idp"})
			return err
		}},
		{"AccountService.DeleteIdentity intruder session", func(ctx context.Context) error {
			_, err := in.account().DeleteIdentity(asVictim(ctx, intruderUser), &cairnv1.DeleteIdentityRequest{ProviderId: "idp"})
			return err
		}},
		{"ProjectsService.GetProject", func(ctx context.Context) error {
			_, err := in.projects().GetProject(ctx, &cairnv1.GetProjectRequest{ProjectId: "victim"})
			return err
		}},
		{"ProjectsService.UpdateProject", func(ctx context.Context) error {
			_, err := in.projects().UpdateProject(ctx, &cairnv1.UpdateProjectRequest{ProjectId: "victim", Name: &name})
			return err
		}},
		{"ProjectsService.DeleteProject", func(ctx context.Context) error {
			_, err := in.projects().DeleteProject(ctx, &cairnv1.DeleteProjectRequest{ProjectId: "victim"})
			return err
		}},
		{"ProjectsService.ListProjects", func(ctx context.Context) error {
			_, err := in.projects().ListProjects(ctx, &cairnv1.ListProjectsRequest{})
			return err
		}},
		{"ProjectsService.CreateProject", func(ctx context.Context) error {
			_, err := in.projects().CreateProject(ctx, &cairnv1.CreateProjectRequest{ProjectId: "squat", Name: "x"})
			return err
		}},
	}
	// Every RPC of every cairn.v1 service must be in the table.
	covered := map[string]bool{}
	for _, sc := range scenarios {
		covered[strings.Fields(sc.name)[0]] = true
	}
	for _, fd := range []protoreflect.FileDescriptor{cairnv1.File_cairn_v1_projects_proto, cairnv1.File_cairn_v1_keys_proto, cairnv1.File_cairn_v1_events_proto, cairnv1.File_cairn_v1_sites_proto} {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				if m := string(svc.Name()) + "." + string(svc.Methods().Get(j).Name()); !covered[m] {
					t.Errorf("%s is missing from the cross-project matrix", m)
				}
			}
		}
	}
	ictx, _ := as(ctx, intruder.GetSecret())
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			wantCode(t, sc.call(ictx), connect.CodePermissionDenied)
		})
	}
	// The plain HTTP routes of sites refuse the foreign key too.
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/sites/victim/web/deployments"},
		{"PUT", "/v1/sites/victim/blobs/" + strings.Repeat("a", 64)},
	} {
		if res, body := in.httpDo(t, r.method, r.path, intruder.GetSecret(), []byte("x"), nil); res.StatusCode != 403 {
			t.Errorf("%s %s with another project's key: %d %s", r.method, r.path, res.StatusCode, body)
		}
	}
	// Nothing of the victim changed, and its own key still works.
	vctx, _ := as(ctx, victimKey.GetSecret())
	got, err := in.keys().GetKey(vctx, &cairnv1.GetKeyRequest{ProjectId: "victim", KeyId: vid})
	if err != nil || got.GetKey().GetName() != "v" {
		t.Fatalf("victim key changed: %v %v", got, err)
	}
	ks, err := in.keys().ListKeys(vctx, &cairnv1.ListKeysRequest{ProjectId: "victim"})
	if err != nil || len(ks.GetKeys()) != 1 {
		t.Fatalf("victim keys changed: %v %v", ks, err)
	}
	evs, err := in.events().ListEvents(vctx, &cairnv1.ListEventsRequest{ProjectId: "victim"})
	if err != nil || len(evs.GetEvents()) != 1 {
		t.Fatalf("victim log changed: %v %v", evs, err)
	}
	if _, err := in.projects().GetProject(op, &cairnv1.GetProjectRequest{ProjectId: "squat"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("intruder created a project: %v", err)
	}
}
