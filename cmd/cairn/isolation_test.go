package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/api/passkey/passkeytest"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
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
	// The victim has a team with a member.
	if _, err := in.teams().CreateTeam(op, &cairnv1.CreateTeamRequest{ProjectId: "victim", TeamId: "vt", Name: "vt"}); err != nil {
		t.Fatal(err)
	}
	vm, err := in.teams().CreateMembership(op, &cairnv1.CreateMembershipRequest{ProjectId: "victim", TeamId: "vt", UserId: "vu", Roles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	vmID := vm.GetMembership().GetId()
	name := "pwned"
	// The victim has a database with a collection, an attribute and an index.
	vdbs := in.databases()
	if _, err := vdbs.CreateDatabase(op, &cairnv1.CreateDatabaseRequest{ProjectId: "victim", DatabaseId: "vdb", Name: "vdb"}); err != nil {
		t.Fatal(err)
	}
	if _, err := vdbs.CreateCollection(op, &cairnv1.CreateCollectionRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Name: "vc"}); err != nil {
		t.Fatal(err)
	}
	if _, err := vdbs.CreateAttribute(op, &cairnv1.CreateAttributeRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc",
		Attribute: &cairnv1.Attribute{Key: "va", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_STRING, Size: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := vdbs.CreateIndex(op, &cairnv1.CreateIndexRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc",
		Index: &cairnv1.Index{Key: "vi", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"va"}}}); err != nil {
		t.Fatal(err)
	}

	// The victim has a bucket with a file (uploaded in chunks), a file
	// token, and an upload in progress.
	vkey, _ := as(ctx, victimKey.GetSecret())
	if _, err := in.storage().CreateBucket(vkey, &cairnv1.CreateBucketRequest{ProjectId: "victim", BucketId: "vb", Name: "vb"}); err != nil {
		t.Fatal(err)
	}
	vdata := fileBytes(64<<10+3, 11)
	vfile := in.uploadChunked(t, victimKey.GetSecret(), "victim", "vb", "vf", "victim.bin", vdata, 32<<10)
	vtok, err := in.storage().CreateFileToken(vkey, &cairnv1.CreateFileTokenRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
	if err != nil {
		t.Fatal(err)
	}
	vtokID := vtok.GetToken().GetId()
	if res := in.putChunk(t, victimKey.GetSecret(), "victim", "vb", "vup", "partial.bin", 0, 8, []byte("half")); res.status != 202 {
		t.Fatalf("victim's first chunk: %s", res)
	}
	vusage, err := in.storage().GetStorageUsage(vkey, &cairnv1.GetStorageUsageRequest{ProjectId: "victim"})
	if err != nil {
		t.Fatal(err)
	}

	// The victim has a function anyone may execute, with a deployment.
	deployWasm(t, in, victimKey.GetSecret(), "victim", &cairnv1.CreateFunctionRequest{FunctionId: "vfn", Name: "vfn", Execute: []string{"any"}})
	vfn, err := in.functions().GetFunction(vkey, &cairnv1.GetFunctionRequest{ProjectId: "victim", FunctionId: "vfn"})
	if err != nil {
		t.Fatal(err)
	}
	vdep := vfn.GetFunction().GetActiveDeploymentId()
	// The victim has a webhook (disabled: no delivery records in its log).
	off := false
	if _, err := in.webhooks().CreateWebhook(vkey, &cairnv1.CreateWebhookRequest{ProjectId: "victim", WebhookId: "vwh", Name: "vwh",
		Url: "https://hooks.example.com/x", Events: &cairnv1.WebhookEvents{Events: []string{"users.*"}}, Enabled: &off}); err != nil {
		t.Fatal(err)
	}

	// The victim has an operator account (its owner), and the intruder one
	// owning the intruder project: the most an account can hold short of
	// administering the instance.
	victimOperator, _ := createOperator(t, in, "victim-owner@example.com", map[string]string{"victim": "owner"})
	_, intruderOperator := createOperator(t, in, "intruder-owner@example.com", map[string]string{"intruder": "owner"})

	scenarios := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"WebhooksService.CreateWebhook", func(ctx context.Context) error {
			_, err := in.webhooks().CreateWebhook(ctx, &cairnv1.CreateWebhookRequest{ProjectId: "victim", WebhookId: "x", Name: "x",
				Url: "https://hooks.example.com/y", Events: &cairnv1.WebhookEvents{Events: []string{"users.*"}}})
			return err
		}},
		{"WebhooksService.GetWebhook", func(ctx context.Context) error {
			_, err := in.webhooks().GetWebhook(ctx, &cairnv1.GetWebhookRequest{ProjectId: "victim", WebhookId: "vwh"})
			return err
		}},
		{"WebhooksService.ListWebhooks", func(ctx context.Context) error {
			_, err := in.webhooks().ListWebhooks(ctx, &cairnv1.ListWebhooksRequest{ProjectId: "victim"})
			return err
		}},
		{"WebhooksService.UpdateWebhook", func(ctx context.Context) error {
			url := "https://attacker.example.com/"
			_, err := in.webhooks().UpdateWebhook(ctx, &cairnv1.UpdateWebhookRequest{ProjectId: "victim", WebhookId: "vwh", Url: &url, RotateSecret: true})
			return err
		}},
		{"WebhooksService.DeleteWebhook", func(ctx context.Context) error {
			_, err := in.webhooks().DeleteWebhook(ctx, &cairnv1.DeleteWebhookRequest{ProjectId: "victim", WebhookId: "vwh"})
			return err
		}},
		{"WebhooksService.RedeliverWebhook", func(ctx context.Context) error {
			_, err := in.webhooks().RedeliverWebhook(ctx, &cairnv1.RedeliverWebhookRequest{ProjectId: "victim", WebhookId: "vwh", FromSequence: 1})
			return err
		}},
		{"WebhooksService.ListWebhookDeliveries", func(ctx context.Context) error {
			_, err := in.webhooks().ListWebhookDeliveries(ctx, &cairnv1.ListWebhookDeliveriesRequest{ProjectId: "victim", WebhookId: "vwh"})
			return err
		}},
		{"FunctionsService.CreateFunction", func(ctx context.Context) error {
			_, err := in.functions().CreateFunction(ctx, &cairnv1.CreateFunctionRequest{ProjectId: "victim", FunctionId: "x", Name: "x", Runtime: "js"})
			return err
		}},
		{"FunctionsService.GetFunction", func(ctx context.Context) error {
			_, err := in.functions().GetFunction(ctx, &cairnv1.GetFunctionRequest{ProjectId: "victim", FunctionId: "vfn"})
			return err
		}},
		{"FunctionsService.ListFunctions", func(ctx context.Context) error {
			_, err := in.functions().ListFunctions(ctx, &cairnv1.ListFunctionsRequest{ProjectId: "victim"})
			return err
		}},
		{"FunctionsService.UpdateFunction", func(ctx context.Context) error {
			_, err := in.functions().UpdateFunction(ctx, &cairnv1.UpdateFunctionRequest{ProjectId: "victim", FunctionId: "vfn", Name: &name})
			return err
		}},
		{"FunctionsService.DeleteFunction", func(ctx context.Context) error {
			_, err := in.functions().DeleteFunction(ctx, &cairnv1.DeleteFunctionRequest{ProjectId: "victim", FunctionId: "vfn"})
			return err
		}},
		{"FunctionsService.CreateFunctionDeployment", func(ctx context.Context) error {
			_, err := in.functions().CreateFunctionDeployment(ctx, &cairnv1.CreateFunctionDeploymentRequest{ProjectId: "victim", FunctionId: "vfn", Code: []byte("x"), Activate: true})
			return err
		}},
		{"FunctionsService.GetFunctionDeployment", func(ctx context.Context) error {
			_, err := in.functions().GetFunctionDeployment(ctx, &cairnv1.GetFunctionDeploymentRequest{ProjectId: "victim", FunctionId: "vfn", DeploymentId: vdep})
			return err
		}},
		{"FunctionsService.ListFunctionDeployments", func(ctx context.Context) error {
			_, err := in.functions().ListFunctionDeployments(ctx, &cairnv1.ListFunctionDeploymentsRequest{ProjectId: "victim", FunctionId: "vfn"})
			return err
		}},
		{"FunctionsService.ActivateFunctionDeployment", func(ctx context.Context) error {
			_, err := in.functions().ActivateFunctionDeployment(ctx, &cairnv1.ActivateFunctionDeploymentRequest{ProjectId: "victim", FunctionId: "vfn", DeploymentId: vdep})
			return err
		}},
		{"FunctionsService.DeleteFunctionDeployment", func(ctx context.Context) error {
			_, err := in.functions().DeleteFunctionDeployment(ctx, &cairnv1.DeleteFunctionDeploymentRequest{ProjectId: "victim", FunctionId: "vfn", DeploymentId: vdep})
			return err
		}},
		{"FunctionsService.CreateExecution", func(ctx context.Context) error {
			_, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "victim", FunctionId: "vfn"})
			return err
		}},
		{"FunctionsService.CreateExecution async", func(ctx context.Context) error {
			_, err := in.functions().CreateExecution(ctx, &cairnv1.CreateExecutionRequest{ProjectId: "victim", FunctionId: "vfn", Async: true})
			return err
		}},
		{"FunctionsService.GetExecution", func(ctx context.Context) error {
			_, err := in.functions().GetExecution(ctx, &cairnv1.GetExecutionRequest{ProjectId: "victim", FunctionId: "vfn", ExecutionId: "x"})
			return err
		}},
		{"FunctionsService.ListExecutions", func(ctx context.Context) error {
			_, err := in.functions().ListExecutions(ctx, &cairnv1.ListExecutionsRequest{ProjectId: "victim", FunctionId: "vfn"})
			return err
		}},
		{"StorageService.CreateBucket", func(ctx context.Context) error {
			_, err := in.storage().CreateBucket(ctx, &cairnv1.CreateBucketRequest{ProjectId: "victim", BucketId: "x", Name: "x"})
			return err
		}},
		{"StorageService.GetBucket", func(ctx context.Context) error {
			_, err := in.storage().GetBucket(ctx, &cairnv1.GetBucketRequest{ProjectId: "victim", BucketId: "vb"})
			return err
		}},
		{"StorageService.ListBuckets", func(ctx context.Context) error {
			_, err := in.storage().ListBuckets(ctx, &cairnv1.ListBucketsRequest{ProjectId: "victim"})
			return err
		}},
		{"StorageService.UpdateBucket", func(ctx context.Context) error {
			_, err := in.storage().UpdateBucket(ctx, &cairnv1.UpdateBucketRequest{ProjectId: "victim", BucketId: "vb", Name: &name,
				Permissions: &cairnv1.Permissions{Values: []string{`read("any")`}}})
			return err
		}},
		{"StorageService.DeleteBucket", func(ctx context.Context) error {
			_, err := in.storage().DeleteBucket(ctx, &cairnv1.DeleteBucketRequest{ProjectId: "victim", BucketId: "vb"})
			return err
		}},
		{"StorageService.CreateFile", func(ctx context.Context) error {
			_, err := in.storage().CreateFile(ctx, &cairnv1.CreateFileRequest{ProjectId: "victim", BucketId: "vb", FileId: "x", Name: "x.txt", Content: []byte("pwned")})
			return err
		}},
		{"StorageService.CreateFile overwriting", func(ctx context.Context) error {
			_, err := in.storage().CreateFile(ctx, &cairnv1.CreateFileRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf", Name: "x.txt", Content: []byte("pwned")})
			return err
		}},
		{"StorageService.GetFile", func(ctx context.Context) error {
			_, err := in.storage().GetFile(ctx, &cairnv1.GetFileRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
			return err
		}},
		{"StorageService.ListFiles", func(ctx context.Context) error {
			_, err := in.storage().ListFiles(ctx, &cairnv1.ListFilesRequest{ProjectId: "victim", BucketId: "vb"})
			return err
		}},
		{"StorageService.UpdateFile", func(ctx context.Context) error {
			_, err := in.storage().UpdateFile(ctx, &cairnv1.UpdateFileRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf", Name: &name,
				Permissions: &cairnv1.Permissions{Values: []string{`read("any")`}}})
			return err
		}},
		{"StorageService.DeleteFile", func(ctx context.Context) error {
			_, err := in.storage().DeleteFile(ctx, &cairnv1.DeleteFileRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
			return err
		}},
		{"StorageService.GetUpload", func(ctx context.Context) error {
			_, err := in.storage().GetUpload(ctx, &cairnv1.GetUploadRequest{ProjectId: "victim", BucketId: "vb", FileId: "vup"})
			return err
		}},
		{"StorageService.CreateFileToken", func(ctx context.Context) error {
			_, err := in.storage().CreateFileToken(ctx, &cairnv1.CreateFileTokenRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
			return err
		}},
		{"StorageService.ListFileTokens", func(ctx context.Context) error {
			_, err := in.storage().ListFileTokens(ctx, &cairnv1.ListFileTokensRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
			return err
		}},
		{"StorageService.DeleteFileToken", func(ctx context.Context) error {
			_, err := in.storage().DeleteFileToken(ctx, &cairnv1.DeleteFileTokenRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf", TokenId: vtokID})
			return err
		}},
		{"StorageService.GetStorageUsage", func(ctx context.Context) error {
			_, err := in.storage().GetStorageUsage(ctx, &cairnv1.GetStorageUsageRequest{ProjectId: "victim"})
			return err
		}},
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
		{"RealtimeService.Subscribe", func(ctx context.Context) error {
			return in.subscribeErr(ctx, &cairnv1.SubscribeRequest{ProjectId: "victim", Channels: []string{"documents", "account"}, AfterSequence: 1})
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
		{"SitesService.VerifySiteDomain", func(ctx context.Context) error {
			_, err := in.sites().VerifySiteDomain(ctx, &cairnv1.VerifySiteDomainRequest{ProjectId: "victim", SiteId: "web", Domain: "www.victim.test"})
			return err
		}},
		{"UsersService.CreateUser", func(ctx context.Context) error {
			_, err := in.users().CreateUser(ctx, &cairnv1.CreateUserRequest{ProjectId: "victim", Email: "x@example.com"})
			return err
		}},
		{"UsersService.GetUser", func(ctx context.Context) error {
			_, err := in.users().GetUser(ctx, &cairnv1.GetUserRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"UsersService.ListUsers", func(ctx context.Context) error {
			_, err := in.users().ListUsers(ctx, &cairnv1.ListUsersRequest{ProjectId: "victim", Search: "a"})
			return err
		}},
		{"UsersService.UpdateUser", func(ctx context.Context) error {
			_, err := in.users().UpdateUser(ctx, &cairnv1.UpdateUserRequest{ProjectId: "victim", UserId: "vu", Name: &name})
			return err
		}},
		{"UsersService.DeleteUser", func(ctx context.Context) error {
			_, err := in.users().DeleteUser(ctx, &cairnv1.DeleteUserRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"UsersService.ListUserSessions", func(ctx context.Context) error {
			_, err := in.users().ListUserSessions(ctx, &cairnv1.ListUserSessionsRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"UsersService.CreateUserSession", func(ctx context.Context) error {
			_, err := in.users().CreateUserSession(ctx, &cairnv1.CreateUserSessionRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"UsersService.DeleteUserSession", func(ctx context.Context) error {
			_, err := in.users().DeleteUserSession(ctx, &cairnv1.DeleteUserSessionRequest{ProjectId: "victim", UserId: "vu", SessionId: "s"})
			return err
		}},
		{"UsersService.DeleteUserSessions", func(ctx context.Context) error {
			_, err := in.users().DeleteUserSessions(ctx, &cairnv1.DeleteUserSessionsRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"UsersService.ListUserPasskeys", func(ctx context.Context) error {
			_, err := in.users().ListUserPasskeys(ctx, &cairnv1.ListUserPasskeysRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"UsersService.DeleteUserPasskey", func(ctx context.Context) error {
			_, err := in.users().DeleteUserPasskey(ctx, &cairnv1.DeleteUserPasskeyRequest{ProjectId: "victim", UserId: "vu", PasskeyId: "k1"})
			return err
		}},
		{"UsersService.GetAuthSettings", func(ctx context.Context) error {
			_, err := in.users().GetAuthSettings(ctx, &cairnv1.GetAuthSettingsRequest{ProjectId: "victim"})
			return err
		}},
		{"UsersService.UpdateAuthSettings", func(ctx context.Context) error {
			_, err := in.users().UpdateAuthSettings(ctx, &cairnv1.UpdateAuthSettingsRequest{ProjectId: "victim", Settings: &cairnv1.AuthSettings{}})
			return err
		}},
		{"TeamsService.CreateTeam", func(ctx context.Context) error {
			_, err := in.teams().CreateTeam(ctx, &cairnv1.CreateTeamRequest{ProjectId: "victim", TeamId: "x", Name: "x"})
			return err
		}},
		{"TeamsService.GetTeam", func(ctx context.Context) error {
			_, err := in.teams().GetTeam(ctx, &cairnv1.GetTeamRequest{ProjectId: "victim", TeamId: "vt"})
			return err
		}},
		{"TeamsService.ListTeams", func(ctx context.Context) error {
			_, err := in.teams().ListTeams(ctx, &cairnv1.ListTeamsRequest{ProjectId: "victim"})
			return err
		}},
		{"TeamsService.UpdateTeam", func(ctx context.Context) error {
			_, err := in.teams().UpdateTeam(ctx, &cairnv1.UpdateTeamRequest{ProjectId: "victim", TeamId: "vt", Name: name})
			return err
		}},
		{"TeamsService.UpdateTeamPrefs", func(ctx context.Context) error {
			_, err := in.teams().UpdateTeamPrefs(ctx, &cairnv1.UpdateTeamPrefsRequest{ProjectId: "victim", TeamId: "vt", Prefs: &structpb.Struct{}})
			return err
		}},
		{"TeamsService.DeleteTeam", func(ctx context.Context) error {
			_, err := in.teams().DeleteTeam(ctx, &cairnv1.DeleteTeamRequest{ProjectId: "victim", TeamId: "vt"})
			return err
		}},
		{"TeamsService.CreateMembership", func(ctx context.Context) error {
			_, err := in.teams().CreateMembership(ctx, &cairnv1.CreateMembershipRequest{ProjectId: "victim", TeamId: "vt", UserId: "intruder"})
			return err
		}},
		{"TeamsService.CreateMembership invitation", func(ctx context.Context) error {
			_, err := in.teams().CreateMembership(ctx, &cairnv1.CreateMembershipRequest{ProjectId: "victim", TeamId: "vt", Email: "i@example.com"})
			return err
		}},
		{"TeamsService.GetMembership", func(ctx context.Context) error {
			_, err := in.teams().GetMembership(ctx, &cairnv1.GetMembershipRequest{ProjectId: "victim", TeamId: "vt", MembershipId: vmID})
			return err
		}},
		{"TeamsService.ListMemberships", func(ctx context.Context) error {
			_, err := in.teams().ListMemberships(ctx, &cairnv1.ListMembershipsRequest{ProjectId: "victim", TeamId: "vt"})
			return err
		}},
		{"TeamsService.UpdateMembership", func(ctx context.Context) error {
			_, err := in.teams().UpdateMembership(ctx, &cairnv1.UpdateMembershipRequest{ProjectId: "victim", TeamId: "vt", MembershipId: vmID, Roles: []string{"owner"}})
			return err
		}},
		{"TeamsService.AcceptMembership", func(ctx context.Context) error {
			_, err := in.teams().AcceptMembership(ctx, &cairnv1.AcceptMembershipRequest{ProjectId: "victim", TeamId: "vt", MembershipId: vmID, UserId: "intruder", Secret: "x"})
			return err
		}},
		{"TeamsService.DeleteMembership", func(ctx context.Context) error {
			_, err := in.teams().DeleteMembership(ctx, &cairnv1.DeleteMembershipRequest{ProjectId: "victim", TeamId: "vt", MembershipId: vmID})
			return err
		}},
		{"TeamsService.ListUserMemberships", func(ctx context.Context) error {
			_, err := in.teams().ListUserMemberships(ctx, &cairnv1.ListUserMembershipsRequest{ProjectId: "victim", UserId: "vu"})
			return err
		}},
		{"DatabasesService.CreateDatabase", func(ctx context.Context) error {
			_, err := in.databases().CreateDatabase(ctx, &cairnv1.CreateDatabaseRequest{ProjectId: "victim", DatabaseId: "x", Name: "x"})
			return err
		}},
		{"DatabasesService.GetDatabase", func(ctx context.Context) error {
			_, err := in.databases().GetDatabase(ctx, &cairnv1.GetDatabaseRequest{ProjectId: "victim", DatabaseId: "vdb"})
			return err
		}},
		{"DatabasesService.ListDatabases", func(ctx context.Context) error {
			_, err := in.databases().ListDatabases(ctx, &cairnv1.ListDatabasesRequest{ProjectId: "victim"})
			return err
		}},
		{"DatabasesService.UpdateDatabase", func(ctx context.Context) error {
			_, err := in.databases().UpdateDatabase(ctx, &cairnv1.UpdateDatabaseRequest{ProjectId: "victim", DatabaseId: "vdb", Name: &name})
			return err
		}},
		{"DatabasesService.DeleteDatabase", func(ctx context.Context) error {
			_, err := in.databases().DeleteDatabase(ctx, &cairnv1.DeleteDatabaseRequest{ProjectId: "victim", DatabaseId: "vdb"})
			return err
		}},
		{"DatabasesService.CreateCollection", func(ctx context.Context) error {
			_, err := in.databases().CreateCollection(ctx, &cairnv1.CreateCollectionRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "x", Name: "x"})
			return err
		}},
		{"DatabasesService.GetCollection", func(ctx context.Context) error {
			_, err := in.databases().GetCollection(ctx, &cairnv1.GetCollectionRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.ListCollections", func(ctx context.Context) error {
			_, err := in.databases().ListCollections(ctx, &cairnv1.ListCollectionsRequest{ProjectId: "victim", DatabaseId: "vdb"})
			return err
		}},
		{"DatabasesService.UpdateCollection", func(ctx context.Context) error {
			_, err := in.databases().UpdateCollection(ctx, &cairnv1.UpdateCollectionRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Name: &name})
			return err
		}},
		{"DatabasesService.DeleteCollection", func(ctx context.Context) error {
			_, err := in.databases().DeleteCollection(ctx, &cairnv1.DeleteCollectionRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.CreateAttribute", func(ctx context.Context) error {
			_, err := in.databases().CreateAttribute(ctx, &cairnv1.CreateAttributeRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Attribute: &cairnv1.Attribute{Key: "x", Type: cairnv1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN}})
			return err
		}},
		{"DatabasesService.GetAttribute", func(ctx context.Context) error {
			_, err := in.databases().GetAttribute(ctx, &cairnv1.GetAttributeRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Key: "va"})
			return err
		}},
		{"DatabasesService.ListAttributes", func(ctx context.Context) error {
			_, err := in.databases().ListAttributes(ctx, &cairnv1.ListAttributesRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.DeleteAttribute", func(ctx context.Context) error {
			_, err := in.databases().DeleteAttribute(ctx, &cairnv1.DeleteAttributeRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Key: "va"})
			return err
		}},
		{"DatabasesService.CreateIndex", func(ctx context.Context) error {
			_, err := in.databases().CreateIndex(ctx, &cairnv1.CreateIndexRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Index: &cairnv1.Index{Key: "x", Type: cairnv1.IndexType_INDEX_TYPE_KEY, Attributes: []string{"va"}}})
			return err
		}},
		{"DatabasesService.GetIndex", func(ctx context.Context) error {
			_, err := in.databases().GetIndex(ctx, &cairnv1.GetIndexRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Key: "vi"})
			return err
		}},
		{"DatabasesService.ListIndexes", func(ctx context.Context) error {
			_, err := in.databases().ListIndexes(ctx, &cairnv1.ListIndexesRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.DeleteIndex", func(ctx context.Context) error {
			_, err := in.databases().DeleteIndex(ctx, &cairnv1.DeleteIndexRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Key: "vi"})
			return err
		}},
		{"DatabasesService.CreateDocument", func(ctx context.Context) error {
			_, err := in.databases().CreateDocument(ctx, &cairnv1.CreateDocumentRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Document: &cairnv1.DocumentInput{DocumentId: "x"}})
			return err
		}},
		{"DatabasesService.GetDocument", func(ctx context.Context) error {
			_, err := in.databases().GetDocument(ctx, &cairnv1.GetDocumentRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", DocumentId: "x"})
			return err
		}},
		{"DatabasesService.ListDocuments", func(ctx context.Context) error {
			_, err := in.databases().ListDocuments(ctx, &cairnv1.ListDocumentsRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.UpdateDocument", func(ctx context.Context) error {
			_, err := in.databases().UpdateDocument(ctx, &cairnv1.UpdateDocumentRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", DocumentId: "x"})
			return err
		}},
		{"DatabasesService.UpsertDocument", func(ctx context.Context) error {
			_, err := in.databases().UpsertDocument(ctx, &cairnv1.UpsertDocumentRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", DocumentId: "x"})
			return err
		}},
		{"DatabasesService.DeleteDocument", func(ctx context.Context) error {
			_, err := in.databases().DeleteDocument(ctx, &cairnv1.DeleteDocumentRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", DocumentId: "x"})
			return err
		}},
		{"DatabasesService.IncrementDocumentAttribute", func(ctx context.Context) error {
			_, err := in.databases().IncrementDocumentAttribute(ctx, &cairnv1.IncrementDocumentAttributeRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", DocumentId: "x", Attribute: "va", Delta: 1})
			return err
		}},
		{"DatabasesService.CreateDocuments", func(ctx context.Context) error {
			_, err := in.databases().CreateDocuments(ctx, &cairnv1.CreateDocumentsRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Documents: []*cairnv1.DocumentInput{{DocumentId: "x"}}})
			return err
		}},
		{"DatabasesService.UpdateDocuments", func(ctx context.Context) error {
			_, err := in.databases().UpdateDocuments(ctx, &cairnv1.UpdateDocumentsRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.DeleteDocuments", func(ctx context.Context) error {
			_, err := in.databases().DeleteDocuments(ctx, &cairnv1.DeleteDocumentsRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
			return err
		}},
		{"DatabasesService.AggregateDocuments", func(ctx context.Context) error {
			_, err := in.databases().AggregateDocuments(ctx, &cairnv1.AggregateDocumentsRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc", Function: cairnv1.AggregateFunction_AGGREGATE_FUNCTION_COUNT})
			return err
		}},
		{"DatabasesService.CreateTransaction", func(ctx context.Context) error {
			_, err := in.databases().CreateTransaction(ctx, &cairnv1.CreateTransactionRequest{ProjectId: "victim"})
			return err
		}},
		{"DatabasesService.GetTransaction", func(ctx context.Context) error {
			_, err := in.databases().GetTransaction(ctx, &cairnv1.GetTransactionRequest{ProjectId: "victim", TransactionId: "x"})
			return err
		}},
		{"DatabasesService.StageOperations", func(ctx context.Context) error {
			_, err := in.databases().StageOperations(ctx, &cairnv1.StageOperationsRequest{ProjectId: "victim", TransactionId: "x", Operations: []*cairnv1.Operation{{DatabaseId: "vdb", CollectionId: "vc", Action: &cairnv1.Operation_Delete{Delete: "x"}}}})
			return err
		}},
		{"DatabasesService.CommitTransaction", func(ctx context.Context) error {
			_, err := in.databases().CommitTransaction(ctx, &cairnv1.CommitTransactionRequest{ProjectId: "victim", TransactionId: "x"})
			return err
		}},
		{"DatabasesService.RollbackTransaction", func(ctx context.Context) error {
			_, err := in.databases().RollbackTransaction(ctx, &cairnv1.RollbackTransactionRequest{ProjectId: "victim", TransactionId: "x"})
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
		{"ProjectsService.GetProjectUsage", func(ctx context.Context) error {
			_, err := in.projects().GetProjectUsage(ctx, &cairnv1.GetProjectUsageRequest{ProjectId: "victim"})
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
		{"OperatorsService.CreateOperator", func(ctx context.Context) error {
			_, err := in.operators().CreateOperator(ctx, &cairnv1.CreateOperatorRequest{Email: "squat@example.com", Password: "operator password",
				Roles: []*cairnv1.OperatorRole{{ProjectId: "victim", Role: "owner"}}})
			return err
		}},
		{"OperatorsService.GetOperator", func(ctx context.Context) error {
			_, err := in.operators().GetOperator(ctx, &cairnv1.GetOperatorRequest{OperatorId: victimOperator})
			return err
		}},
		{"OperatorsService.ListOperators", func(ctx context.Context) error {
			_, err := in.operators().ListOperators(ctx, &cairnv1.ListOperatorsRequest{})
			return err
		}},
		{"OperatorsService.UpdateOperator", func(ctx context.Context) error {
			_, err := in.operators().UpdateOperator(ctx, &cairnv1.UpdateOperatorRequest{OperatorId: victimOperator, Name: &name})
			return err
		}},
		{"OperatorsService.DeleteOperator", func(ctx context.Context) error {
			_, err := in.operators().DeleteOperator(ctx, &cairnv1.DeleteOperatorRequest{OperatorId: victimOperator})
			return err
		}},
		{"OperatorsService.RevokeOperatorSessions", func(ctx context.Context) error {
			_, err := in.operators().RevokeOperatorSessions(ctx, &cairnv1.RevokeOperatorSessionsRequest{OperatorId: victimOperator})
			return err
		}},
		{"OperatorsService.GetCurrentOperator", func(ctx context.Context) error {
			_, err := in.operators().GetCurrentOperator(ctx, &cairnv1.GetCurrentOperatorRequest{})
			return err
		}},
		{"OperatorsService.DeleteCurrentOperatorSession", func(ctx context.Context) error {
			_, err := in.operators().DeleteCurrentOperatorSession(ctx, &cairnv1.DeleteCurrentOperatorSessionRequest{})
			return err
		}},
		{"OperatorsService.UpdateCurrentOperatorPassword", func(ctx context.Context) error {
			_, err := in.operators().UpdateCurrentOperatorPassword(ctx, &cairnv1.UpdateCurrentOperatorPasswordRequest{CurrentPassword: "operator password", NewPassword: "another long password"})
			return err
		}},
		{"OperatorsService.CreateCurrentOperatorTotp", func(ctx context.Context) error {
			_, err := in.operators().CreateCurrentOperatorTotp(ctx, &cairnv1.CreateCurrentOperatorTotpRequest{})
			return err
		}},
		{"OperatorsService.VerifyCurrentOperatorTotp", func(ctx context.Context) error {
			_, err := in.operators().VerifyCurrentOperatorTotp(ctx, &cairnv1.VerifyCurrentOperatorTotpRequest{Code: "123456"})
			return err
		}},
		{"OperatorsService.DeleteCurrentOperatorTotp", func(ctx context.Context) error {
			_, err := in.operators().DeleteCurrentOperatorTotp(ctx, &cairnv1.DeleteCurrentOperatorTotpRequest{Code: "123456"})
			return err
		}},
		{"OperatorsService.RegenerateCurrentOperatorRecoveryCodes", func(ctx context.Context) error {
			_, err := in.operators().RegenerateCurrentOperatorRecoveryCodes(ctx, &cairnv1.RegenerateCurrentOperatorRecoveryCodesRequest{Code: "123456"})
			return err
		}},
		{"OperatorsService.ResetOperatorMfa", func(ctx context.Context) error {
			_, err := in.operators().ResetOperatorMfa(ctx, &cairnv1.ResetOperatorMfaRequest{OperatorId: victimOperator})
			return err
		}},
		{"OperatorsService.InviteOperator", func(ctx context.Context) error {
			_, err := in.operators().InviteOperator(ctx, &cairnv1.InviteOperatorRequest{Email: "squat@example.com",
				Roles: []*cairnv1.OperatorRole{{ProjectId: "victim", Role: "owner"}}})
			return err
		}},
		{"OperatorsService.RevokeOperatorInvitation", func(ctx context.Context) error {
			_, err := in.operators().RevokeOperatorInvitation(ctx, &cairnv1.RevokeOperatorInvitationRequest{OperatorId: victimOperator})
			return err
		}},
	}
	// Every RPC of every cairn.v1 service must be in the table.
	covered := map[string]bool{}
	for _, sc := range scenarios {
		covered[strings.Fields(sc.name)[0]] = true
	}
	for _, sc := range accountCalls(in, "victim-user") {
		covered[sc.name] = true
	}
	// Signing in names no project: TestOperatorAccounts covers it.
	covered["OperatorsService.CreateOperatorSession"] = true
	// Accepting an invitation names no project and needs only its token:
	// TestOperatorInvitations covers it.
	covered["OperatorsService.AcceptOperatorInvitation"] = true
	for _, fd := range []protoreflect.FileDescriptor{cairnv1.File_cairn_v1_projects_proto, cairnv1.File_cairn_v1_keys_proto,
		cairnv1.File_cairn_v1_events_proto, cairnv1.File_cairn_v1_sites_proto, cairnv1.File_cairn_v1_account_proto,
		cairnv1.File_cairn_v1_users_proto, cairnv1.File_cairn_v1_teams_proto, cairnv1.File_cairn_v1_databases_proto,
		cairnv1.File_cairn_v1_storage_proto, cairnv1.File_cairn_v1_realtime_proto, cairnv1.File_cairn_v1_functions_proto,
		cairnv1.File_cairn_v1_webhooks_proto, cairnv1.File_cairn_v1_operators_proto} {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				if m := string(svc.Name()) + "." + string(svc.Methods().Get(j).Name()); !covered[m] {
					t.Errorf("%s is missing from the cross-project matrix", m)
				}
			}
		}
	}
	// The victim has a user; the intruder project's users and sessions
	// are the foreign credentials.
	vk, _ := as(ctx, victimKey.GetSecret())
	if _, err := in.users().CreateUser(vk, &cairnv1.CreateUserRequest{ProjectId: "victim", UserId: "vu", Email: "v@example.com", Password: "victim password"}); err != nil {
		t.Fatal(err)
	}
	ictx, _ := as(ctx, intruder.GetSecret())
	ig, _ := guest(ctx, "intruder", "")
	if _, err := in.account().CreateAccount(ig, &cairnv1.CreateAccountRequest{Email: "i@example.com", Password: "intruder password"}); err != nil {
		t.Fatal(err)
	}
	isess := signIn(t, in, "intruder", "i@example.com", "intruder password")
	is, _ := guest(ctx, "intruder", isess.GetSecret())
	ijwt, err := in.account().CreateJWT(is, &cairnv1.CreateJWTRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The intruder's session and JWT are refused by every server API too.
	sessOnServer, _ := as(ctx, isess.GetSecret())
	for _, sc := range scenarios {
		if strings.HasPrefix(sc.name, "UsersService") || strings.HasPrefix(sc.name, "KeysService") || strings.HasPrefix(sc.name, "TeamsService") ||
			strings.HasPrefix(sc.name, "DatabasesService") || strings.HasPrefix(sc.name, "StorageService") || strings.HasPrefix(sc.name, "FunctionsService") ||
			strings.HasPrefix(sc.name, "WebhooksService") {
			if code := connect.CodeOf(sc.call(sessOnServer)); code != connect.CodePermissionDenied && code != connect.CodeUnauthenticated {
				t.Errorf("%s with another project's session: %v", sc.name, code)
			}
		}
	}
	// Storage, realtime and executions let end users in: the intruder's
	// session and JWT, even naming the victim in Cairn-Project, are still
	// refused.
	for _, sc := range scenarios {
		if !strings.HasPrefix(sc.name, "StorageService") && !strings.HasPrefix(sc.name, "RealtimeService") && !strings.HasPrefix(sc.name, "FunctionsService") {
			continue
		}
		for _, cred := range []struct{ name, token string }{{"session", isess.GetSecret()}, {"jwt", ijwt.GetJwt()}} {
			c, _ := guest(ctx, "victim", cred.token)
			if code := connect.CodeOf(sc.call(c)); code != connect.CodePermissionDenied && code != connect.CodeUnauthenticated {
				t.Errorf("%s with another project's %s: %v", sc.name, cred.name, code)
			}
		}
	}
	// Every AccountService call on the victim with the intruder's session,
	// JWT or key is refused and reveals nothing.
	for _, cred := range []struct{ name, token string }{{"session", isess.GetSecret()}, {"jwt", ijwt.GetJwt()}, {"key", intruder.GetSecret()}} {
		for _, sc := range accountCalls(in, "vu") {
			t.Run(sc.name+" with "+cred.name, func(t *testing.T) {
				c, _ := guest(ctx, "victim", cred.token)
				if code := connect.CodeOf(sc.call(c)); code != connect.CodePermissionDenied && code != connect.CodeUnauthenticated {
					t.Errorf("want unauthenticated or permission_denied, got %v", code)
				}
			})
		}
	}
	if u, err := in.users().GetUser(vk, &cairnv1.GetUserRequest{ProjectId: "victim", UserId: "vu"}); err != nil || u.GetUser().GetName() != "" {
		t.Fatalf("victim user changed: %v %v", u, err)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			wantCode(t, sc.call(ictx), connect.CodePermissionDenied)
		})
	}
	// The intruder's operator account learns nothing of the victim: every
	// call naming it answers not_found, as for a project that does not
	// exist; instance operations are refused whatever they name.
	octx, _ := as(ctx, intruderOperator)
	for _, sc := range scenarios {
		want := connect.CodeNotFound
		switch sc.name {
		case "OperatorsService.GetCurrentOperator", "OperatorsService.DeleteCurrentOperatorSession", "ProjectsService.ListProjects",
			"OperatorsService.UpdateCurrentOperatorPassword", "OperatorsService.CreateCurrentOperatorTotp",
			"OperatorsService.VerifyCurrentOperatorTotp", "OperatorsService.DeleteCurrentOperatorTotp",
			"OperatorsService.RegenerateCurrentOperatorRecoveryCodes":
			continue // about the caller itself (below, and TestOperatorSelfService)
		case "ProjectsService.CreateProject", "ProjectsService.UpdateProject", "OperatorsService.CreateOperator", "OperatorsService.GetOperator",
			"OperatorsService.ListOperators", "OperatorsService.UpdateOperator", "OperatorsService.DeleteOperator", "OperatorsService.RevokeOperatorSessions",
			"OperatorsService.ResetOperatorMfa", "OperatorsService.InviteOperator", "OperatorsService.RevokeOperatorInvitation":
			want = connect.CodePermissionDenied
		}
		t.Run("operator account "+sc.name, func(t *testing.T) {
			wantCode(t, sc.call(octx), want)
		})
	}
	if ps, err := in.projects().ListProjects(octx, &cairnv1.ListProjectsRequest{}); err != nil || len(ps.GetProjects()) != 1 || ps.GetProjects()[0].GetId() != "intruder" {
		t.Errorf("the intruder's operator account lists %v %v", ps, err)
	}
	if cur, err := in.operators().GetCurrentOperator(octx, &cairnv1.GetCurrentOperatorRequest{}); err != nil || len(cur.GetOperator().GetRoles()) != 1 {
		t.Errorf("the intruder's operator account: %v %v", cur, err)
	}
	if _, status, err := in.dialSocket(intruderOperator, "project=victim&channels=documents&after=1"); status != http.StatusNotFound && status != http.StatusForbidden {
		t.Errorf("realtime WebSocket with another project's operator account: %d %v", status, err)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/storage/buckets/vb/files/vf/download?project=victim"},
		{"POST", "/v1/sites/victim/web/deployments"},
		{"POST", "/v1/projects/victim/functions/vfn/deployments?activate=true"},
		{"GET", "/v1/functions/victim/vfn"},
		{"GET", "/v1/projects/victim/export"},
		{"POST", "/v1/projects/import?as=stolen"},
		{"POST", "/v1/projects/victim/fork?as=stolen"},
	} {
		if res, body := in.httpDo(t, r.method, r.path, intruderOperator, []byte("x"), map[string]string{"Cairn-Passphrase": "p"}); res.StatusCode != 404 && res.StatusCode != 403 {
			t.Errorf("%s %s with another project's operator account: %d %s", r.method, r.path, res.StatusCode, body)
		}
	}
	// So does the realtime WebSocket, for every foreign credential.
	for _, cred := range []struct{ name, token string }{{"key", intruder.GetSecret()}, {"session", isess.GetSecret()}, {"jwt", ijwt.GetJwt()}} {
		if _, status, err := in.dialSocket(cred.token, "project=victim&channels=documents&after=1"); status != http.StatusForbidden && status != http.StatusUnauthorized {
			t.Errorf("realtime WebSocket with another project's %s: %d %v", cred.name, status, err)
		}
	}
	// Realtime presence: the victim's key is present on the victim's
	// channels; the intruder, on its own connection naming the same
	// channels, is told they do not exist and sees no member.
	vchans := []string{"teams.vt", "databases.vdb.collections.vc.documents", "buckets.vb.files"}
	q := "project=victim"
	for _, c := range vchans {
		q += "&channels=" + c
	}
	present := in.socket(t, victimKey.GetSecret(), q)
	present.untilLive(t)
	for _, c := range vchans {
		present.send(t, joinMsg(t, c, map[string]any{"secret": "victim"}))
		present.until(t, 5*time.Second, "the victim's join on "+c, presenceOf(cairnv1.PresenceAction_PRESENCE_ACTION_JOIN, ""))
	}
	for _, cred := range []struct{ name, token string }{{"key", intruder.GetSecret()}, {"session", isess.GetSecret()}} {
		peek := in.socket(t, cred.token, strings.Replace(q, "project=victim", "project=intruder", 1))
		peek.untilLive(t)
		for _, c := range vchans {
			for _, m := range []*cairnv1.RealtimeClientMessage{watchMsg(c), joinMsg(t, c, nil)} {
				peek.send(t, m)
				if r := peek.until(t, 5*time.Second, cred.name+" on "+c, func(m *cairnv1.SubscribeResponse) bool { return isRejected(m) || isSync(m) || m.GetPresence() != nil }); !strings.Contains(r.GetRejected().GetReason(), "not found") {
					t.Errorf("presence on the victim's %s with the intruder's %s: %v", c, cred.name, r)
				}
			}
		}
	}
	// The same matrix through sites' own APIs (/_cairn/ on a user-content
	// host): the intruder's, pinned to the intruder, naming the victim; and
	// the victim's, with the intruder's key.
	for _, host := range []string{"web.intruder", "web.victim", "x.intruder.fn"} {
		saved := in.client
		in.client = connect.NewClient(connecthttp.NewTransport(h2cClient(), in.hostURL(host)+"/_cairn"))
		for _, sc := range scenarios {
			if strings.Contains(sc.name, "system log") && strings.Contains(host, "intruder") {
				// An empty project_id on a site's API is the site's own
				// project: the intruder reading its own log.
				continue
			}
			t.Run(host+"/_cairn "+sc.name, func(t *testing.T) {
				wantCode(t, sc.call(ictx), connect.CodePermissionDenied)
			})
		}
		in.client = saved
	}
	for _, base := range []string{in.hostURL("web.intruder") + "/_cairn", in.hostURL("web.victim") + "/_cairn"} {
		for _, cred := range []struct{ name, token string }{{"key", intruder.GetSecret()}, {"session", isess.GetSecret()}, {"jwt", ijwt.GetJwt()}} {
			for _, path := range []string{"/v1/storage/buckets/vb/files/vf/download?project=victim", "/v1/realtime?project=victim&channels=documents"} {
				req, _ := http.NewRequest(http.MethodGet, base+path, nil)
				req.Header.Set("Authorization", "Bearer "+cred.token)
				if cred.name == "jwt" {
					req.Header.Set("Cairn-Project", "intruder")
				}
				res, err := noRedirects.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 403 && res.StatusCode != 401 {
					t.Errorf("GET %s%s with another project's %s: %d", base, path, cred.name, res.StatusCode)
				}
			}
		}
	}
	// The plain HTTP routes of sites and functions refuse the foreign key
	// too, and functions' the foreign session and JWT.
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/sites/victim/web/deployments"},
		{"PUT", "/v1/sites/victim/blobs/" + strings.Repeat("a", 64)},
		{"POST", "/v1/projects/victim/functions/vfn/deployments?activate=true"},
		{"POST", "/v1/functions/victim/vfn/x"},
		{"GET", "/v1/functions/victim/vfn"},
		// Export, import and fork are the operator's: no project key, not
		// even the project's own, since a package holds all its secrets.
		{"GET", "/v1/projects/victim/export"},
		{"POST", "/v1/projects/import?as=stolen"},
		{"POST", "/v1/projects/victim/fork?as=stolen"},
	} {
		if strings.Contains(r.path, "/export") || strings.Contains(r.path, "/import") || strings.Contains(r.path, "/fork") {
			for _, cred := range []struct{ name, token string }{{"own key", victimKey.GetSecret()}, {"session", isess.GetSecret()}, {"jwt", ijwt.GetJwt()}} {
				if res, body := in.httpDo(t, r.method, r.path, cred.token, []byte("x"), map[string]string{"Cairn-Passphrase": "p"}); res.StatusCode != 403 {
					t.Errorf("%s %s with the project's %s: %d %s", r.method, r.path, cred.name, res.StatusCode, body)
				}
			}
		}
		if res, body := in.httpDo(t, r.method, r.path, intruder.GetSecret(), []byte("x"), nil); res.StatusCode != 403 {
			t.Errorf("%s %s with another project's key: %d %s", r.method, r.path, res.StatusCode, body)
		}
		if !strings.Contains(r.path, "/functions/") {
			continue
		}
		for _, cred := range []struct{ name, token string }{{"session", isess.GetSecret()}, {"jwt", ijwt.GetJwt()}} {
			if res, body := in.httpDo(t, r.method, r.path, cred.token, []byte("x"), nil); res.StatusCode != 403 && res.StatusCode != 401 {
				t.Errorf("%s %s with another project's %s: %d %s", r.method, r.path, cred.name, res.StatusCode, body)
			}
		}
	}
	// The victim's function is as it was, and never ran.
	if f, err := in.functions().GetFunction(vkey, &cairnv1.GetFunctionRequest{ProjectId: "victim", FunctionId: "vfn"}); err != nil ||
		f.GetFunction().GetName() != "vfn" || f.GetFunction().GetActiveDeploymentId() != vdep {
		t.Fatalf("victim function changed: %v %v", f, err)
	}
	if ds, err := in.functions().ListFunctionDeployments(vkey, &cairnv1.ListFunctionDeploymentsRequest{ProjectId: "victim", FunctionId: "vfn"}); err != nil || len(ds.GetDeployments()) != 1 {
		t.Fatalf("victim deployments changed: %v %v", ds, err)
	}
	if es, err := in.functions().ListExecutions(vkey, &cairnv1.ListExecutionsRequest{ProjectId: "victim", FunctionId: "vfn"}); err != nil || len(es.GetExecutions()) != 0 {
		t.Fatalf("the victim's function ran: %v %v", es, err)
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
	// The key, the team, its membership, the database, its collection, the
	// attribute, the index, the bucket, the file's three chunks, its token,
	// the upload in progress, the user and its email claim, the function,
	// its deployment and its activation, the webhook.
	if err != nil || len(evs.GetEvents()) != 19 {
		t.Fatalf("victim log changed: %v %v", evs, err)
	}
	if w, err := in.webhooks().GetWebhook(vctx, &cairnv1.GetWebhookRequest{ProjectId: "victim", WebhookId: "vwh"}); err != nil ||
		w.GetWebhook().GetUrl() != "https://hooks.example.com/x" || w.GetWebhook().GetEnabled() {
		t.Fatalf("victim webhook changed: %v %v", w, err)
	}
	vc, err := in.databases().GetCollection(vctx, &cairnv1.GetCollectionRequest{ProjectId: "victim", DatabaseId: "vdb", CollectionId: "vc"})
	if err != nil || vc.GetCollection().GetName() != "vc" || len(vc.GetCollection().GetAttributes()) != 1 || len(vc.GetCollection().GetIndexes()) != 1 {
		t.Fatalf("victim collection changed: %v %v", vc, err)
	}
	vt, err := in.teams().GetTeam(vctx, &cairnv1.GetTeamRequest{ProjectId: "victim", TeamId: "vt"})
	if err != nil || vt.GetTeam().GetName() != "vt" {
		t.Fatalf("victim team changed: %v %v", vt, err)
	}
	vms, err := in.teams().ListUserMemberships(vctx, &cairnv1.ListUserMembershipsRequest{ProjectId: "victim", UserId: "vu"})
	if err != nil || len(vms.GetMemberships()) != 1 || vms.GetMemberships()[0].GetRoles()[0] != "owner" {
		t.Fatalf("victim memberships changed: %v %v", vms, err)
	}
	if _, err := in.projects().GetProject(op, &cairnv1.GetProjectRequest{ProjectId: "squat"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("intruder created a project: %v", err)
	}
	checkVictimStorage(t, in, victimKey.GetSecret(), vfile, vdata, vtokID, vusage)
}

// checkVictimStorage checks that the victim's bucket vb, its file vf (the
// same bytes), its one file token and its usage are as set up.
func checkVictimStorage(t *testing.T, in *instance, key string, vfile *cairnv1.File, vdata []byte, tokenID string, usage *cairnv1.GetStorageUsageResponse) {
	t.Helper()
	k, _ := as(context.Background(), key)
	st := in.storage()
	vb, err := st.GetBucket(k, &cairnv1.GetBucketRequest{ProjectId: "victim", BucketId: "vb"})
	if err != nil || vb.GetBucket().GetName() != "vb" || len(vb.GetBucket().GetPermissions()) != 0 {
		t.Fatalf("victim bucket changed: %v %v", vb, err)
	}
	bs, err := st.ListBuckets(k, &cairnv1.ListBucketsRequest{ProjectId: "victim"})
	if err != nil || len(bs.GetBuckets()) != 1 {
		t.Fatalf("victim buckets changed: %v %v", bs, err)
	}
	f, err := st.GetFile(k, &cairnv1.GetFileRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
	if err != nil || f.GetFile().GetName() != vfile.GetName() || f.GetFile().GetSha256() != sha(vdata) ||
		len(f.GetFile().GetPermissions()) != 0 || !f.GetFile().GetUpdatedAt().AsTime().Equal(vfile.GetUpdatedAt().AsTime()) {
		t.Fatalf("victim file changed: %v %v", f, err)
	}
	fs, err := st.ListFiles(k, &cairnv1.ListFilesRequest{ProjectId: "victim", BucketId: "vb"})
	if err != nil || len(fs.GetFiles()) != 1 {
		t.Fatalf("victim files changed: %v %v", fs, err)
	}
	if res := in.fetch(t, key, "victim", "vb", "vf", "download", nil); res.status != http.StatusOK || sha(res.body) != sha(vdata) {
		t.Fatalf("victim download: %d, sha %s", res.status, sha(res.body))
	}
	ts, err := st.ListFileTokens(k, &cairnv1.ListFileTokensRequest{ProjectId: "victim", BucketId: "vb", FileId: "vf"})
	if err != nil || len(ts.GetTokens()) != 1 || ts.GetTokens()[0].GetId() != tokenID {
		t.Fatalf("victim file tokens changed: %v %v", ts, err)
	}
	up, err := st.GetUpload(k, &cairnv1.GetUploadRequest{ProjectId: "victim", BucketId: "vb", FileId: "vup"})
	if err != nil || up.GetReceived() != 4 || up.GetSize() != 8 {
		t.Fatalf("victim upload changed: %v %v", up, err)
	}
	u, err := st.GetStorageUsage(k, &cairnv1.GetStorageUsageRequest{ProjectId: "victim"})
	if err != nil || u.GetUsedBytes() != usage.GetUsedBytes() || u.GetFiles() != usage.GetFiles() {
		t.Fatalf("victim storage usage changed: %v, was %v (%v)", u, usage, err)
	}
}

type call struct {
	name string
	call func(ctx context.Context) error
}

// accountCalls calls every AccountService RPC as a signed-in user of the
// project in the context would (userID names a user of it).
func accountCalls(in *instance, userID string) []call {
	a := in.account()
	pk := cairnv1connect.NewPasskeyServiceClient(in.client)
	return []call{
		{"AccountService.CreateAccount", func(ctx context.Context) error {
			_, err := a.CreateAccount(ctx, &cairnv1.CreateAccountRequest{Email: "n@example.com", Password: "password 123"})
			return err
		}},
		{"AccountService.CreateEmailPasswordSession", func(ctx context.Context) error {
			_, err := a.CreateEmailPasswordSession(ctx, &cairnv1.CreateEmailPasswordSessionRequest{Email: "v@example.com", Password: "victim password"})
			return err
		}},
		{"AccountService.CreateAnonymousSession", func(ctx context.Context) error {
			_, err := a.CreateAnonymousSession(ctx, &cairnv1.CreateAnonymousSessionRequest{})
			return err
		}},
		{"AccountService.CreateSession", func(ctx context.Context) error {
			_, err := a.CreateSession(ctx, &cairnv1.CreateSessionRequest{UserId: userID, Secret: "s"})
			return err
		}},
		{"AccountService.GetAccount", func(ctx context.Context) error {
			_, err := a.GetAccount(ctx, &cairnv1.GetAccountRequest{})
			return err
		}},
		{"AccountService.UpdateName", func(ctx context.Context) error {
			_, err := a.UpdateName(ctx, &cairnv1.UpdateNameRequest{Name: "pwned"})
			return err
		}},
		{"AccountService.UpdateEmail", func(ctx context.Context) error {
			_, err := a.UpdateEmail(ctx, &cairnv1.UpdateEmailRequest{Email: "p@example.com", Password: "victim password"})
			return err
		}},
		{"AccountService.UpdatePassword", func(ctx context.Context) error {
			_, err := a.UpdatePassword(ctx, &cairnv1.UpdatePasswordRequest{Password: "pwned password", OldPassword: "victim password"})
			return err
		}},
		{"AccountService.UpdatePrefs", func(ctx context.Context) error {
			_, err := a.UpdatePrefs(ctx, &cairnv1.UpdatePrefsRequest{Prefs: &structpb.Struct{}})
			return err
		}},
		{"AccountService.DeleteAccount", func(ctx context.Context) error {
			_, err := a.DeleteAccount(ctx, &cairnv1.DeleteAccountRequest{})
			return err
		}},
		{"AccountService.ListSessions", func(ctx context.Context) error {
			_, err := a.ListSessions(ctx, &cairnv1.ListSessionsRequest{})
			return err
		}},
		{"AccountService.GetSession", func(ctx context.Context) error {
			_, err := a.GetSession(ctx, &cairnv1.GetSessionRequest{SessionId: "current"})
			return err
		}},
		{"AccountService.DeleteSession", func(ctx context.Context) error {
			_, err := a.DeleteSession(ctx, &cairnv1.DeleteSessionRequest{SessionId: "current"})
			return err
		}},
		{"AccountService.DeleteSessions", func(ctx context.Context) error {
			_, err := a.DeleteSessions(ctx, &cairnv1.DeleteSessionsRequest{})
			return err
		}},
		{"AccountService.CreateJWT", func(ctx context.Context) error {
			_, err := a.CreateJWT(ctx, &cairnv1.CreateJWTRequest{})
			return err
		}},
		{"AccountService.CreateVerification", func(ctx context.Context) error {
			_, err := a.CreateVerification(ctx, &cairnv1.CreateVerificationRequest{Url: "https://app.example/verify"})
			return err
		}},
		{"AccountService.ConfirmVerification", func(ctx context.Context) error {
			_, err := a.ConfirmVerification(ctx, &cairnv1.ConfirmVerificationRequest{UserId: userID, Secret: "s"})
			return err
		}},
		{"AccountService.CreateRecovery", func(ctx context.Context) error {
			_, err := a.CreateRecovery(ctx, &cairnv1.CreateRecoveryRequest{Email: "v@example.com", Url: "https://app.example/r"})
			return err
		}},
		{"AccountService.ConfirmRecovery", func(ctx context.Context) error {
			_, err := a.ConfirmRecovery(ctx, &cairnv1.ConfirmRecoveryRequest{UserId: userID, Secret: "s", Password: "pwned password"})
			return err
		}},
		{"AccountService.CreateMagicURLToken", func(ctx context.Context) error {
			_, err := a.CreateMagicURLToken(ctx, &cairnv1.CreateMagicURLTokenRequest{Email: "v@example.com", Url: "https://app.example/m"})
			return err
		}},
		{"AccountService.CreateEmailToken", func(ctx context.Context) error {
			_, err := a.CreateEmailToken(ctx, &cairnv1.CreateEmailTokenRequest{Email: "v@example.com"})
			return err
		}},
		{"AccountService.CreateOAuth2Token", func(ctx context.Context) error {
			_, err := a.CreateOAuth2Token(ctx, &cairnv1.CreateOAuth2TokenRequest{ProviderId: "github", SuccessUrl: "https://app.example/ok", FailureUrl: "https://app.example/no"})
			return err
		}},
		{"AccountService.ListIdentities", func(ctx context.Context) error {
			_, err := a.ListIdentities(ctx, &cairnv1.ListIdentitiesRequest{})
			return err
		}},
		{"AccountService.DeleteIdentity", func(ctx context.Context) error {
			_, err := a.DeleteIdentity(ctx, &cairnv1.DeleteIdentityRequest{ProviderId: "github"})
			return err
		}},
		{"AccountService.CreateTotp", func(ctx context.Context) error {
			_, err := a.CreateTotp(ctx, &cairnv1.CreateTotpRequest{})
			return err
		}},
		{"AccountService.VerifyTotp", func(ctx context.Context) error {
			_, err := a.VerifyTotp(ctx, &cairnv1.VerifyTotpRequest{Code: "123456"})
			return err
		}},
		{"AccountService.DeleteTotp", func(ctx context.Context) error {
			_, err := a.DeleteTotp(ctx, &cairnv1.DeleteTotpRequest{Code: "123456"})
			return err
		}},
		{"AccountService.CompleteMfa", func(ctx context.Context) error {
			_, err := a.CompleteMfa(ctx, &cairnv1.CompleteMfaRequest{Code: "123456"})
			return err
		}},
		{"AccountService.UpdateMfa", func(ctx context.Context) error {
			_, err := a.UpdateMfa(ctx, &cairnv1.UpdateMfaRequest{Enabled: true})
			return err
		}},
		{"AccountService.RegenerateRecoveryCodes", func(ctx context.Context) error {
			_, err := a.RegenerateRecoveryCodes(ctx, &cairnv1.RegenerateRecoveryCodesRequest{Code: "123456"})
			return err
		}},
		{"PasskeyService.BeginPasskeyRegistration", func(ctx context.Context) error {
			_, err := pk.BeginPasskeyRegistration(ctx, &cairnv1.BeginPasskeyRegistrationRequest{})
			return err
		}},
		{"PasskeyService.FinishPasskeyRegistration", func(ctx context.Context) error {
			_, err := pk.FinishPasskeyRegistration(ctx, &cairnv1.FinishPasskeyRegistrationRequest{CredentialJson: "{}"})
			return err
		}},
		{"PasskeyService.BeginPasskeySignIn", func(ctx context.Context) error {
			_, err := pk.BeginPasskeySignIn(ctx, &cairnv1.BeginPasskeySignInRequest{Email: "v@example.com"})
			return err
		}},
		{"PasskeyService.FinishPasskeySignIn", func(ctx context.Context) error {
			_, err := pk.FinishPasskeySignIn(ctx, &cairnv1.FinishPasskeySignInRequest{CredentialJson: "{}"})
			return err
		}},
		{"PasskeyService.ListPasskeys", func(ctx context.Context) error {
			_, err := pk.ListPasskeys(ctx, &cairnv1.ListPasskeysRequest{})
			return err
		}},
		{"PasskeyService.DeletePasskey", func(ctx context.Context) error {
			_, err := pk.DeletePasskey(ctx, &cairnv1.DeletePasskeyRequest{PasskeyId: "k1"})
			return err
		}},
		{"PasskeyService.BeginPasskeyMfa", func(ctx context.Context) error {
			_, err := pk.BeginPasskeyMfa(ctx, &cairnv1.BeginPasskeyMfaRequest{})
			return err
		}},
		{"PasskeyService.FinishPasskeyMfa", func(ctx context.Context) error {
			_, err := pk.FinishPasskeyMfa(ctx, &cairnv1.FinishPasskeyMfaRequest{CredentialJson: "{}"})
			return err
		}},
	}
}

// TestCrossProjectStorageHTTP: the plain HTTP storage routes refuse
// another project's key, session, JWT and file tokens, and a file token
// opens nothing in another project.
func TestCrossProjectStorageHTTP(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	victim := newProjectWithKey(t, in, "victim", allScopes()...)
	intruder := newProjectWithKey(t, in, "intruder", allScopes()...)
	vk, _ := as(ctx, victim)
	ik, _ := as(ctx, intruder)
	// Both have a bucket b with a file f (an image, so that a preview
	// works for its owner) and a token for it; the victim also has an
	// upload in progress.
	vdata, idata := pngBytes(t, 40, 30), pngBytes(t, 20, 10)
	tokens := map[string]string{}
	for _, p := range []struct {
		project string
		k       context.Context
		key     string
		data    []byte
	}{{"victim", vk, victim, vdata}, {"intruder", ik, intruder, idata}} {
		if _, err := in.storage().CreateBucket(p.k, &cairnv1.CreateBucketRequest{ProjectId: p.project, BucketId: "b", Name: "b"}); err != nil {
			t.Fatal(err)
		}
		in.uploadChunked(t, p.key, p.project, "b", "f", "image.png", p.data, 1<<20)
		tok, err := in.storage().CreateFileToken(p.k, &cairnv1.CreateFileTokenRequest{ProjectId: p.project, BucketId: "b", FileId: "f"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[p.project] = tok.GetSecret()
	}
	if res := in.putChunk(t, victim, "victim", "b", "up", "partial.bin", 0, 8, []byte("half")); res.status != http.StatusAccepted {
		t.Fatalf("victim's first chunk: %s", res)
	}
	before, err := in.storage().GetStorageUsage(vk, &cairnv1.GetStorageUsageRequest{ProjectId: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	// The intruder project's end user, with a session and a JWT.
	ig, _ := guest(ctx, "intruder", "")
	if _, err := in.account().CreateAccount(ig, &cairnv1.CreateAccountRequest{Email: "i@example.com", Password: "intruder password"}); err != nil {
		t.Fatal(err)
	}
	isess := signIn(t, in, "intruder", "i@example.com", "intruder password")
	is, _ := guest(ctx, "intruder", isess.GetSecret())
	ijwt, err := in.account().CreateJWT(is, &cairnv1.CreateJWTRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Positive controls: the owner and its token are served.
	if res := in.fetch(t, victim, "victim", "b", "f", "download", nil); res.status != http.StatusOK || sha(res.body) != sha(vdata) {
		t.Fatalf("victim's own download: %s", res)
	}
	if res := in.fetch(t, "", "victim", "b", "f", "view", url.Values{"token": {tokens["victim"]}}); res.status != http.StatusOK || sha(res.body) != sha(vdata) {
		t.Fatalf("victim's own token: %s", res)
	}
	if res := in.fetch(t, victim, "victim", "b", "f", "preview", url.Values{"width": {"10"}}); res.status != http.StatusOK {
		t.Fatalf("victim's own preview: %s", res)
	}

	refused := func(t *testing.T, what string, res httpResult, codes ...int) {
		t.Helper()
		if len(codes) == 0 {
			codes = []int{http.StatusForbidden, http.StatusNotFound}
		}
		if !slices.Contains(codes, res.status) {
			t.Errorf("%s: want one of %v, got %s", what, codes, res)
		}
		if bytes.Contains(res.body, vdata[:64]) || bytes.Contains(res.body, idata[:64]) {
			t.Errorf("%s: the answer holds file bytes", what)
		}
	}
	// Foreign credentials: the intruder's key, session (as bearer and as the
	// victim project's cookie) and JWT.
	creds := []struct {
		name, token string
		cookie      bool
		codes       []int
	}{
		{name: "key", token: intruder},
		{name: "session", token: isess.GetSecret()},
		{name: "session cookie", token: isess.GetSecret(), cookie: true},
		{name: "jwt", token: ijwt.GetJwt(), codes: []int{http.StatusUnauthorized, http.StatusForbidden}},
	}
	for _, c := range creds {
		bearer, h := c.token, http.Header{}
		if c.cookie {
			bearer = ""
			h.Set("Cookie", "cairn_session_victim="+c.token)
		}
		// Uploads: a new file, over the victim's file, the next chunk of the
		// victim's upload, and a multipart form.
		for _, up := range []struct {
			what, fileID string
			rng          string
		}{{"new file", "x", ""}, {"over the victim's file", "f", ""}, {"next chunk of the victim's upload", "up", "bytes 4-7/8"}} {
			hh := h.Clone()
			if up.rng != "" {
				hh.Set("Content-Range", up.rng)
			}
			res := in.do(t, httpCall{method: http.MethodPost, path: filesPath("b"), project: "victim", token: bearer, header: hh,
				query: url.Values{"fileId": {up.fileID}, "name": {"x.bin"}}, body: strings.NewReader("pwnd")})
			refused(t, "upload "+up.what+" with the intruder's "+c.name, res, c.codes...)
		}
		body, ctype := multipartFile(t, "f", "x.bin", []byte("pwned"))
		hh := h.Clone()
		hh.Set("Content-Type", ctype)
		res := in.do(t, httpCall{method: http.MethodPost, path: filesPath("b"), project: "victim", token: bearer, header: hh, body: body})
		refused(t, "multipart upload with the intruder's "+c.name, res, c.codes...)
		// Reads of the victim's file, also with the intruder's own token.
		for _, what := range []string{"download", "view", "preview"} {
			res := in.do(t, httpCall{method: http.MethodGet, path: filePath("b", "f", what), project: "victim", token: bearer, header: h})
			refused(t, what+" with the intruder's "+c.name, res, c.codes...)
			res = in.do(t, httpCall{method: http.MethodGet, path: filePath("b", "f", what), project: "victim", token: bearer, header: h,
				query: url.Values{"token": {tokens["intruder"]}}})
			refused(t, what+" with the intruder's "+c.name+" and file token", res, c.codes...)
		}
	}
	for _, what := range []string{"download", "view", "preview"} {
		// Bucket b grants guests nothing: a token that does not grant
		// the file answers as a missing bucket (api/hidden.go), exactly as
		// the same request to a project that does not exist.
		missing := in.fetch(t, "", "nosuchproject", "b", "f", what, url.Values{"token": {tokens["intruder"]}})
		// The intruder's token for its own b/f, sent to the victim's b/f.
		res := in.fetch(t, "", "victim", "b", "f", what, url.Values{"token": {tokens["intruder"]}})
		refused(t, what+" of the victim's file with the intruder's file token", res, http.StatusNotFound)
		if res.status != missing.status || string(res.body) != string(missing.body) {
			t.Errorf("%s: an existing project answers %s, a missing one %s", what, res, missing)
		}
		// The victim's token, sent with ?project=intruder (whose b/f exists).
		res = in.fetch(t, "", "intruder", "b", "f", what, url.Values{"token": {tokens["victim"]}})
		refused(t, what+" with the victim's file token in project intruder", res, http.StatusNotFound)
		// The same with the project in the Cairn-Project header.
		res = in.do(t, httpCall{method: http.MethodGet, path: filePath("b", "f", what), header: http.Header{"Cairn-Project": {"intruder"}},
			query: url.Values{"token": {tokens["victim"]}}})
		refused(t, what+" with the victim's file token and Cairn-Project: intruder", res, http.StatusNotFound)
	}
	// Guests get nothing of the victim's either.
	for _, what := range []string{"download", "view", "preview"} {
		refused(t, what+" as a guest", in.fetch(t, "", "victim", "b", "f", what, nil))
	}
	refused(t, "upload as a guest", in.putChunk(t, "", "victim", "b", "g", "g.bin", 0, 4, []byte("pwnd")))

	// The victim's file, upload and usage are unchanged.
	f, err := in.storage().GetFile(vk, &cairnv1.GetFileRequest{ProjectId: "victim", BucketId: "b", FileId: "f"})
	if err != nil || f.GetFile().GetSha256() != sha(vdata) || f.GetFile().GetName() != "image.png" {
		t.Fatalf("victim file changed: %v %v", f, err)
	}
	if res := in.fetch(t, victim, "victim", "b", "f", "download", nil); res.status != http.StatusOK || sha(res.body) != sha(vdata) {
		t.Fatalf("victim's download after the attempts: %s", res)
	}
	fs, err := in.storage().ListFiles(vk, &cairnv1.ListFilesRequest{ProjectId: "victim", BucketId: "b"})
	if err != nil || len(fs.GetFiles()) != 1 {
		t.Fatalf("victim files changed: %v %v", fs, err)
	}
	up, err := in.storage().GetUpload(vk, &cairnv1.GetUploadRequest{ProjectId: "victim", BucketId: "b", FileId: "up"})
	if err != nil || up.GetReceived() != 4 {
		t.Fatalf("victim upload changed: %v %v", up, err)
	}
	after, err := in.storage().GetStorageUsage(vk, &cairnv1.GetStorageUsageRequest{ProjectId: "victim"})
	if err != nil || after.GetUsedBytes() != before.GetUsedBytes() || after.GetFiles() != before.GetFiles() {
		t.Fatalf("victim usage changed: %v, was %v (%v)", after, before, err)
	}
}

// TestCrossProjectPasskey: a passkey of one project signs nobody into
// another, even a user with the same id, whatever the forged answer says:
// another relying party, the victim's relying party, or a challenge the
// intruder's project began.
func TestCrossProjectPasskey(t *testing.T) {
	in := startInstance(t, t.TempDir())
	ctx := context.Background()
	vkey := newProjectWithKey(t, in, "victim", "users.read")
	newProjectWithKey(t, in, "intruder", "users.read")
	for _, p := range []string{"victim", "intruder"} {
		g, _ := guest(ctx, p, "")
		if _, err := in.account().CreateAccount(g, &cairnv1.CreateAccountRequest{UserId: "same", Email: "same@example.com", Password: "same password"}); err != nil {
			t.Fatal(err)
		}
	}
	isess := signIn(t, in, "intruder", "same@example.com", "same password").GetSecret()
	ipage, vpage := sitePage(in, "intruder"), sitePage(in, "victim")
	a := passkeytest.New()
	ipage.register(t, a, isess, "intruder's")
	c := a.Creds[0]

	refused := func(what string, cred []byte) {
		t.Helper()
		if _, err := vpage.finish(cred); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s: want permission_denied, got %v", what, err)
		}
	}
	// The browser offers the victim's page nothing: its relying party differs.
	b, err := vpage.svc.BeginPasskeySignIn(vpage.call(""), &cairnv1.BeginPasskeySignInRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get([]byte(b.GetOptionsJson()), vpage.origin); err == nil {
		t.Fatal("the authenticator offered the intruder's passkey to the victim's relying party")
	}
	ch := passkeytest.Challenge([]byte(b.GetOptionsJson()))
	forged, _ := a.Assert(c, "intruder.localhost", ch, vpage.origin)
	refused("signed for the intruder's relying party", forged)
	b, _ = vpage.svc.BeginPasskeySignIn(vpage.call(""), &cairnv1.BeginPasskeySignInRequest{})
	forged, _ = a.Assert(c, "victim.localhost", passkeytest.Challenge([]byte(b.GetOptionsJson())), vpage.origin)
	refused("signed for the victim's relying party", forged)
	b, _ = vpage.svc.BeginPasskeySignIn(vpage.call(""), &cairnv1.BeginPasskeySignInRequest{Email: "same@example.com"})
	forged, _ = a.Assert(c, "victim.localhost", passkeytest.Challenge([]byte(b.GetOptionsJson())), vpage.origin)
	refused("with the victim user's email", forged)
	// A genuine answer to the intruder's own challenge, brought to the victim.
	refused("the intruder's challenge", ipage.assertion(t, a, "", ipage.origin))
	// The intruder's session is no credential on the victim's page.
	_, err = vpage.svc.ListPasskeys(vpage.call(isess), &cairnv1.ListPasskeysRequest{})
	if code := connect.CodeOf(err); code != connect.CodePermissionDenied && code != connect.CodeUnauthenticated {
		t.Fatalf("the intruder's session on the victim's page: %v", err)
	}
	// The victim's user holds no passkey and no session.
	vk, _ := as(ctx, vkey)
	u, err := in.users().GetUser(vk, &cairnv1.GetUserRequest{ProjectId: "victim", UserId: "same"})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := in.users().ListUserSessions(vk, &cairnv1.ListUserSessionsRequest{ProjectId: "victim", UserId: "same"})
	if err != nil || len(ss.GetSessions()) != 0 {
		t.Fatalf("victim sessions: %v %v", ss, err)
	}
	if u.GetUser().GetId() != "same" {
		t.Fatalf("victim user: %v", u)
	}
	// The intruder's own passkey still works on its own page.
	if _, err := ipage.finish(ipage.assertion(t, a, "", ipage.origin)); err != nil {
		t.Fatalf("the intruder's own sign-in: %v", err)
	}
}
