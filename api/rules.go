package api

import (
	"context"
	"errors"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-dev/cairn/api/inflight"
	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/proto/grpc/health/v1/healthv1connect"
	"github.com/cairn-dev/cairn/streams"
)

// rule is who may call a procedure.
type rule struct {
	// public procedures need no credential (health, reflection).
	public bool
	// operator procedures are for instance operators only (the admin key
	// and administrator accounts)...
	operator bool
	// ...and for operator accounts holding at least this role on the
	// project the request names (a request naming none answers for the
	// caller: ListProjects lists the projects it has a role on). On a
	// scope rule, the role an operator account needs besides the scope:
	// settings that open the project to others are the owner's.
	member access.Role
	// scope a project API key needs; the request's project_id must be the
	// key's project.
	scope access.Scope
	// client procedures are for a project's end users (AccountService): the
	// project comes from the session or the Cairn-Project header.
	client clientAccess
	// mfaOK lets a session that has not proven its second factor call it.
	mfaOK bool
	// users lets a project's signed-in end users call a server procedure
	// too; the handler applies its own rules to them (TeamsService).
	users bool
	// guests lets callers without any credential call a server procedure
	// for the project the request names; with users, the handler applies
	// the resource's permissions (documents readable by "any").
	guests bool
}

// clientAccess is who among a project's end users may call a procedure.
type clientAccess int

const (
	notClient clientAccess = iota
	// guests: anyone, signed in or not (sign-up, sign-in, recovery).
	guests
	// signedIn: a user with a session or JWT.
	signedIn
)

// rules lists every procedure; a procedure missing here is refused, so a
// new endpoint cannot ship without deciding who may call it
// (TestEveryProcedureHasARule).
var rules = map[string]rule{
	cairnv1connect.ProjectsServiceCreateProjectProcedure:                  {operator: true},
	cairnv1connect.ProjectsServiceGetProjectProcedure:                     {operator: true, member: access.Viewer},
	cairnv1connect.ProjectsServiceListProjectsProcedure:                   {operator: true, member: access.Viewer},
	cairnv1connect.ProjectsServiceUpdateProjectProcedure:                  {operator: true},
	cairnv1connect.ProjectsServiceDeleteProjectProcedure:                  {operator: true, member: access.Owner},
	cairnv1connect.OperatorsServiceCreateOperatorProcedure:                {operator: true},
	cairnv1connect.OperatorsServiceGetOperatorProcedure:                   {operator: true},
	cairnv1connect.OperatorsServiceListOperatorsProcedure:                 {operator: true},
	cairnv1connect.OperatorsServiceUpdateOperatorProcedure:                {operator: true},
	cairnv1connect.OperatorsServiceDeleteOperatorProcedure:                {operator: true},
	cairnv1connect.OperatorsServiceRevokeOperatorSessionsProcedure:        {operator: true},
	cairnv1connect.OperatorsServiceCreateOperatorSessionProcedure:         {public: true},
	cairnv1connect.OperatorsServiceGetCurrentOperatorProcedure:            {operator: true, member: access.Viewer},
	cairnv1connect.OperatorsServiceDeleteCurrentOperatorSessionProcedure:  {operator: true, member: access.Viewer},
	cairnv1connect.OperatorsServiceUpdateCurrentOperatorPasswordProcedure: {operator: true, member: access.Viewer},
	cairnv1connect.OperatorsServiceCreateCurrentOperatorTotpProcedure:     {operator: true, member: access.Viewer},
	cairnv1connect.OperatorsServiceVerifyCurrentOperatorTotpProcedure:     {operator: true, member: access.Viewer},
	cairnv1connect.OperatorsServiceDeleteCurrentOperatorTotpProcedure:     {operator: true, member: access.Viewer},
	cairnv1connect.OperatorsServiceResetOperatorMfaProcedure:              {operator: true},
	cairnv1connect.OperatorsServiceInviteOperatorProcedure:                {operator: true},
	cairnv1connect.OperatorsServiceRevokeOperatorInvitationProcedure:      {operator: true},
	cairnv1connect.OperatorsServiceAcceptOperatorInvitationProcedure:      {public: true},
	cairnv1connect.ProjectsServiceGetProjectUsageProcedure:                {scope: access.UsageRead},
	cairnv1connect.KeysServiceCreateKeyProcedure:                          {scope: access.KeysWrite},
	cairnv1connect.KeysServiceGetKeyProcedure:                             {scope: access.KeysRead},
	cairnv1connect.KeysServiceListKeysProcedure:                           {scope: access.KeysRead},
	cairnv1connect.KeysServiceUpdateKeyProcedure:                          {scope: access.KeysWrite},
	cairnv1connect.KeysServiceDeleteKeyProcedure:                          {scope: access.KeysWrite},
	cairnv1connect.WebhooksServiceCreateWebhookProcedure:                  {scope: access.WebhooksWrite},
	cairnv1connect.WebhooksServiceGetWebhookProcedure:                     {scope: access.WebhooksRead},
	cairnv1connect.WebhooksServiceListWebhooksProcedure:                   {scope: access.WebhooksRead},
	cairnv1connect.WebhooksServiceUpdateWebhookProcedure:                  {scope: access.WebhooksWrite},
	cairnv1connect.WebhooksServiceDeleteWebhookProcedure:                  {scope: access.WebhooksWrite},
	cairnv1connect.WebhooksServiceRedeliverWebhookProcedure:               {scope: access.WebhooksWrite},
	cairnv1connect.WebhooksServiceListWebhookDeliveriesProcedure:          {scope: access.WebhooksRead},
	cairnv1connect.EventsServiceListEventsProcedure:                       {scope: access.EventsRead},
	cairnv1connect.EventsServiceStreamEventsProcedure:                     {scope: access.EventsRead},
	cairnv1connect.SitesServiceCreateSiteProcedure:                        {scope: access.SitesWrite},
	cairnv1connect.SitesServiceGetSiteProcedure:                           {scope: access.SitesRead},
	cairnv1connect.SitesServiceListSitesProcedure:                         {scope: access.SitesRead},
	cairnv1connect.SitesServiceUpdateSiteProcedure:                        {scope: access.SitesWrite},
	cairnv1connect.SitesServiceDeleteSiteProcedure:                        {scope: access.SitesWrite},
	cairnv1connect.SitesServiceMissingFilesProcedure:                      {scope: access.SitesWrite},
	cairnv1connect.SitesServiceCreateDeploymentProcedure:                  {scope: access.SitesWrite},
	cairnv1connect.SitesServiceGetDeploymentProcedure:                     {scope: access.SitesRead},
	cairnv1connect.SitesServiceListDeploymentsProcedure:                   {scope: access.SitesRead},
	cairnv1connect.SitesServiceActivateDeploymentProcedure:                {scope: access.SitesWrite},
	cairnv1connect.SitesServiceDeleteDeploymentProcedure:                  {scope: access.SitesWrite},
	cairnv1connect.SitesServiceVerifySiteDomainProcedure:                  {scope: access.SitesWrite},
	cairnv1connect.StorageServiceCreateBucketProcedure:                    {scope: access.BucketsWrite},
	cairnv1connect.StorageServiceGetBucketProcedure:                       {scope: access.BucketsRead},
	cairnv1connect.StorageServiceListBucketsProcedure:                     {scope: access.BucketsRead},
	cairnv1connect.StorageServiceUpdateBucketProcedure:                    {scope: access.BucketsWrite},
	cairnv1connect.StorageServiceDeleteBucketProcedure:                    {scope: access.BucketsWrite},
	cairnv1connect.StorageServiceCreateFileProcedure:                      {scope: access.FilesWrite, users: true, guests: true},
	cairnv1connect.StorageServiceGetFileProcedure:                         {scope: access.FilesRead, users: true, guests: true},
	cairnv1connect.StorageServiceListFilesProcedure:                       {scope: access.FilesRead, users: true, guests: true},
	cairnv1connect.StorageServiceUpdateFileProcedure:                      {scope: access.FilesWrite, users: true, guests: true},
	cairnv1connect.StorageServiceDeleteFileProcedure:                      {scope: access.FilesWrite, users: true, guests: true},
	cairnv1connect.StorageServiceGetUploadProcedure:                       {scope: access.FilesWrite, users: true, guests: true},
	cairnv1connect.StorageServiceCreateFileTokenProcedure:                 {scope: access.FilesWrite},
	cairnv1connect.StorageServiceListFileTokensProcedure:                  {scope: access.FilesRead},
	cairnv1connect.StorageServiceDeleteFileTokenProcedure:                 {scope: access.FilesWrite},
	cairnv1connect.StorageServiceGetStorageUsageProcedure:                 {scope: access.BucketsRead},
	cairnv1connect.RealtimeServiceSubscribeProcedure:                      {scope: access.EventsRead, users: true, guests: true},
	cairnv1connect.FunctionsServiceCreateFunctionProcedure:                {scope: access.FunctionsWrite},
	cairnv1connect.FunctionsServiceGetFunctionProcedure:                   {scope: access.FunctionsRead},
	cairnv1connect.FunctionsServiceListFunctionsProcedure:                 {scope: access.FunctionsRead},
	cairnv1connect.FunctionsServiceUpdateFunctionProcedure:                {scope: access.FunctionsWrite},
	cairnv1connect.FunctionsServiceDeleteFunctionProcedure:                {scope: access.FunctionsWrite},
	cairnv1connect.FunctionsServiceCreateFunctionDeploymentProcedure:      {scope: access.FunctionsWrite},
	cairnv1connect.FunctionsServiceGetFunctionDeploymentProcedure:         {scope: access.FunctionsRead},
	cairnv1connect.FunctionsServiceListFunctionDeploymentsProcedure:       {scope: access.FunctionsRead},
	cairnv1connect.FunctionsServiceActivateFunctionDeploymentProcedure:    {scope: access.FunctionsWrite},
	cairnv1connect.FunctionsServiceDeleteFunctionDeploymentProcedure:      {scope: access.FunctionsWrite},
	cairnv1connect.FunctionsServiceCreateExecutionProcedure:               {scope: access.ExecutionsWrite, users: true, guests: true},
	cairnv1connect.FunctionsServiceGetExecutionProcedure:                  {scope: access.ExecutionsRead},
	cairnv1connect.FunctionsServiceListExecutionsProcedure:                {scope: access.ExecutionsRead},
	cairnv1connect.AccountServiceCreateAccountProcedure:                   {client: guests},
	cairnv1connect.AccountServiceCreateEmailPasswordSessionProcedure:      {client: guests},
	cairnv1connect.AccountServiceCreateAnonymousSessionProcedure:          {client: guests},
	cairnv1connect.AccountServiceCreateSessionProcedure:                   {client: guests},
	cairnv1connect.AccountServiceGetAccountProcedure:                      {client: signedIn, mfaOK: true},
	cairnv1connect.AccountServiceUpdateNameProcedure:                      {client: signedIn},
	cairnv1connect.AccountServiceUpdateEmailProcedure:                     {client: signedIn},
	cairnv1connect.AccountServiceUpdatePasswordProcedure:                  {client: signedIn},
	cairnv1connect.AccountServiceUpdatePrefsProcedure:                     {client: signedIn},
	cairnv1connect.AccountServiceDeleteAccountProcedure:                   {client: signedIn},
	cairnv1connect.AccountServiceListSessionsProcedure:                    {client: signedIn, mfaOK: true},
	cairnv1connect.AccountServiceGetSessionProcedure:                      {client: signedIn, mfaOK: true},
	cairnv1connect.AccountServiceDeleteSessionProcedure:                   {client: signedIn, mfaOK: true},
	cairnv1connect.AccountServiceDeleteSessionsProcedure:                  {client: signedIn, mfaOK: true},
	cairnv1connect.AccountServiceCreateJWTProcedure:                       {client: signedIn},
	cairnv1connect.AccountServiceCreateVerificationProcedure:              {client: signedIn},
	cairnv1connect.AccountServiceConfirmVerificationProcedure:             {client: guests},
	cairnv1connect.AccountServiceCreateRecoveryProcedure:                  {client: guests},
	cairnv1connect.AccountServiceConfirmRecoveryProcedure:                 {client: guests},
	cairnv1connect.AccountServiceCreateMagicURLTokenProcedure:             {client: guests},
	cairnv1connect.AccountServiceCreateEmailTokenProcedure:                {client: guests},
	cairnv1connect.AccountServiceCreateOAuth2TokenProcedure:               {client: guests},
	cairnv1connect.AccountServiceListIdentitiesProcedure:                  {client: signedIn},
	cairnv1connect.AccountServiceDeleteIdentityProcedure:                  {client: signedIn},
	cairnv1connect.AccountServiceCreateTotpProcedure:                      {client: signedIn},
	cairnv1connect.AccountServiceVerifyTotpProcedure:                      {client: signedIn},
	cairnv1connect.AccountServiceDeleteTotpProcedure:                      {client: signedIn},
	cairnv1connect.AccountServiceCompleteMfaProcedure:                     {client: signedIn, mfaOK: true},
	cairnv1connect.AccountServiceRegenerateRecoveryCodesProcedure:         {client: signedIn},
	cairnv1connect.AccountServiceUpdateMfaProcedure:                       {client: signedIn},
	cairnv1connect.PasskeyServiceBeginPasskeyRegistrationProcedure:        {client: signedIn},
	cairnv1connect.PasskeyServiceFinishPasskeyRegistrationProcedure:       {client: signedIn},
	cairnv1connect.PasskeyServiceBeginPasskeySignInProcedure:              {client: guests},
	cairnv1connect.PasskeyServiceFinishPasskeySignInProcedure:             {client: guests},
	cairnv1connect.PasskeyServiceListPasskeysProcedure:                    {client: signedIn},
	cairnv1connect.PasskeyServiceDeletePasskeyProcedure:                   {client: signedIn},
	cairnv1connect.PasskeyServiceBeginPasskeyMfaProcedure:                 {client: signedIn, mfaOK: true},
	cairnv1connect.PasskeyServiceFinishPasskeyMfaProcedure:                {client: signedIn, mfaOK: true},
	cairnv1connect.UsersServiceCreateUserProcedure:                        {scope: access.UsersWrite},
	cairnv1connect.UsersServiceGetUserProcedure:                           {scope: access.UsersRead},
	cairnv1connect.UsersServiceListUsersProcedure:                         {scope: access.UsersRead},
	cairnv1connect.UsersServiceUpdateUserProcedure:                        {scope: access.UsersWrite},
	cairnv1connect.UsersServiceDeleteUserProcedure:                        {scope: access.UsersWrite},
	cairnv1connect.UsersServiceListUserSessionsProcedure:                  {scope: access.UsersRead},
	cairnv1connect.UsersServiceCreateUserSessionProcedure:                 {scope: access.UsersWrite},
	cairnv1connect.UsersServiceDeleteUserSessionProcedure:                 {scope: access.UsersWrite},
	cairnv1connect.UsersServiceDeleteUserSessionsProcedure:                {scope: access.UsersWrite},
	cairnv1connect.UsersServiceListUserPasskeysProcedure:                  {scope: access.UsersRead},
	cairnv1connect.UsersServiceDeleteUserPasskeyProcedure:                 {scope: access.UsersWrite},
	cairnv1connect.UsersServiceGetAuthSettingsProcedure:                   {scope: access.UsersRead},
	cairnv1connect.UsersServiceUpdateAuthSettingsProcedure:                {scope: access.UsersWrite, member: access.Owner},
	healthv1connect.HealthCheckProcedure:                                  {public: true},
	healthv1connect.HealthListProcedure:                                   {public: true},
	healthv1connect.HealthWatchProcedure:                                  {public: true},
	cairnv1connect.TeamsServiceCreateTeamProcedure:                        {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceGetTeamProcedure:                           {scope: access.TeamsRead, users: true},
	cairnv1connect.TeamsServiceListTeamsProcedure:                         {scope: access.TeamsRead, users: true},
	cairnv1connect.TeamsServiceUpdateTeamProcedure:                        {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceUpdateTeamPrefsProcedure:                   {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceDeleteTeamProcedure:                        {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceCreateMembershipProcedure:                  {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceGetMembershipProcedure:                     {scope: access.TeamsRead, users: true},
	cairnv1connect.TeamsServiceListMembershipsProcedure:                   {scope: access.TeamsRead, users: true},
	cairnv1connect.TeamsServiceUpdateMembershipProcedure:                  {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceAcceptMembershipProcedure:                  {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceDeleteMembershipProcedure:                  {scope: access.TeamsWrite, users: true},
	cairnv1connect.TeamsServiceListUserMembershipsProcedure:               {scope: access.TeamsRead, users: true},
	cairnv1connect.DatabasesServiceCreateDatabaseProcedure:                {scope: access.DatabasesWrite},
	cairnv1connect.DatabasesServiceGetDatabaseProcedure:                   {scope: access.DatabasesRead},
	cairnv1connect.DatabasesServiceListDatabasesProcedure:                 {scope: access.DatabasesRead},
	cairnv1connect.DatabasesServiceUpdateDatabaseProcedure:                {scope: access.DatabasesWrite},
	cairnv1connect.DatabasesServiceDeleteDatabaseProcedure:                {scope: access.DatabasesWrite},
	cairnv1connect.DatabasesServiceCreateCollectionProcedure:              {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceGetCollectionProcedure:                 {scope: access.CollectionsRead},
	cairnv1connect.DatabasesServiceListCollectionsProcedure:               {scope: access.CollectionsRead},
	cairnv1connect.DatabasesServiceUpdateCollectionProcedure:              {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceDeleteCollectionProcedure:              {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceCreateAttributeProcedure:               {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceGetAttributeProcedure:                  {scope: access.CollectionsRead},
	cairnv1connect.DatabasesServiceListAttributesProcedure:                {scope: access.CollectionsRead},
	cairnv1connect.DatabasesServiceDeleteAttributeProcedure:               {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceCreateIndexProcedure:                   {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceGetIndexProcedure:                      {scope: access.CollectionsRead},
	cairnv1connect.DatabasesServiceListIndexesProcedure:                   {scope: access.CollectionsRead},
	cairnv1connect.DatabasesServiceDeleteIndexProcedure:                   {scope: access.CollectionsWrite},
	cairnv1connect.DatabasesServiceCreateDocumentProcedure:                {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceGetDocumentProcedure:                   {scope: access.DocumentsRead, users: true, guests: true},
	cairnv1connect.DatabasesServiceListDocumentsProcedure:                 {scope: access.DocumentsRead, users: true, guests: true},
	cairnv1connect.DatabasesServiceUpdateDocumentProcedure:                {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceUpsertDocumentProcedure:                {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceDeleteDocumentProcedure:                {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceIncrementDocumentAttributeProcedure:    {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceCreateDocumentsProcedure:               {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceUpdateDocumentsProcedure:               {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceDeleteDocumentsProcedure:               {scope: access.DocumentsWrite, users: true, guests: true},
	cairnv1connect.DatabasesServiceAggregateDocumentsProcedure:            {scope: access.DocumentsRead, users: true, guests: true},
	cairnv1connect.DatabasesServiceCreateTransactionProcedure:             {scope: access.DocumentsWrite, users: true},
	cairnv1connect.DatabasesServiceGetTransactionProcedure:                {scope: access.DocumentsWrite, users: true},
	cairnv1connect.DatabasesServiceStageOperationsProcedure:               {scope: access.DocumentsWrite, users: true},
	cairnv1connect.DatabasesServiceCommitTransactionProcedure:             {scope: access.DocumentsWrite, users: true},
	cairnv1connect.DatabasesServiceRollbackTransactionProcedure:           {scope: access.DocumentsWrite, users: true},

	// Alone so that its long name does not realign the table above.
	cairnv1connect.OperatorsServiceRegenerateCurrentOperatorRecoveryCodesProcedure: {operator: true, member: access.Viewer},
}

func ruleFor(procedure string) (rule, bool) {
	if r, ok := rules[procedure]; ok {
		return r, true
	}
	// Reflection describes the public schema only.
	if strings.HasPrefix(procedure, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(procedure, "/grpc.reflection.v1alpha.ServerReflection/") {
		return rule{public: true}, true
	}
	return rule{}, false
}

// projectScoped is every request that names a project.
type projectScoped interface{ GetProjectId() string }

// Header names Cairn reads and writes.
const (
	headerSeq            = "Cairn-Seq"
	headerMinSeq         = "Cairn-Min-Seq"
	headerMinSysSeq      = "Cairn-Min-Sys-Seq"
	headerIdempotencyKey = "Idempotency-Key"
	headerRequestID      = "X-Request-Id"
	headerProject        = "Cairn-Project"
)

// accessInterceptor authenticates the caller before any payload work, then
// checks the request's project against the credential and the procedure's
// rule as soon as the message is decoded, and honours Cairn-Min-Seq.
func (s *Server) accessInterceptor(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		r, ok := ruleFor(spec.Procedure)
		if !ok {
			return connect.Errorf(connect.CodePermissionDenied, "no access rule for %s", spec.Procedure)
		}
		if r.public {
			return next(ctx, spec, stream)
		}
		info, _ := connect.CallInfoForServerContext(ctx)
		if r.operator && pinnedProject(ctx) != "" {
			return connect.NewError(connect.CodePermissionDenied, "instance operations are not served on a site's API")
		}
		if r.client != notClient {
			p, err := s.clientPrincipal(ctx, info, r)
			if err != nil {
				return err
			}
			ctx = withPrincipal(ctx, p)
			g := &guardedStream{ctx: ctx, s: s, p: p, unary: slotted(spec)}
			defer g.done()
			if pr, err := s.project(p.Project); err == nil {
				if err := g.admit(p.Project, pr.GetLimits()); err != nil {
					return err
				}
			}
			return next(ctx, spec, stream)
		}
		authz := info.RequestHeader().Get("Authorization")
		if authz == "" && (r.guests || r.users) {
			// The project's session cookie, or a guest of the project the
			// request names: both known once the message is (Receive).
			p := access.Principal{Kind: access.Anonymous}
			ctx = withPrincipal(ctx, p)
			g := &guardedStream{ServerStream: stream, ctx: ctx, s: s, rule: r, p: p, info: info, cookies: true, unary: slotted(spec)}
			defer g.done()
			return next(ctx, spec, g)
		}
		token, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok || token == "" {
			return domain.Errorf(domain.KindUnauthenticated, "missing credential: send Authorization: Bearer <key>")
		}
		p, err := s.credential(ctx, info, token, info.RequestHeader().Get(headerProject), r.users)
		if err != nil {
			return err
		}
		if p.IsUser() && (!r.users || p.MfaPending) {
			return connect.NewError(connect.CodePermissionDenied, "end-user sessions cannot call this; servers use an API key")
		}
		if r.operator && !p.IsOperator() && (p.Kind != access.Member || r.member == "") {
			return connect.NewError(connect.CodePermissionDenied, "only instance operators may call this")
		}
		if pin := pinnedProject(ctx); pin != "" && p.Project != pin {
			return connect.NewError(connect.CodePermissionDenied, "the credential is not one of project "+pin+", whose site's API this is")
		}
		ctx = withPrincipal(ctx, p)
		g := &guardedStream{ServerStream: stream, ctx: ctx, s: s, rule: r, p: p, info: info, unary: slotted(spec)}
		defer g.done()
		if p.Project != "" && g.unary {
			// Keys and sessions name their project: the call is charged
			// and waits for its slot before its body is read, so a refused
			// call costs no decoding.
			if pr, err := s.project(p.Project); err == nil {
				if err := g.admit(p.Project, pr.GetLimits()); err != nil {
					return err
				}
			}
		}
		return next(ctx, spec, g)
	}
}

// slotted reports whether a call takes one of its project's slots: unary
// calls do, except a function's execution, which may run for minutes and
// has slots of its own (execSlot). Streams live as long as their client.
func slotted(spec connect.Spec) bool {
	return spec.StreamType == connect.StreamTypeUnary && spec.Procedure != cairnv1connect.FunctionsServiceCreateExecutionProcedure
}

// clientPrincipal authenticates an end-user call: the project is the
// session's, or the Cairn-Project header's for a guest; a credential for
// another project, an API key or the operator key is refused here (servers
// use UsersService).
func (s *Server) clientPrincipal(ctx context.Context, info *connect.CallInfo, r rule) (access.Principal, error) {
	header := info.RequestHeader()
	named := header.Get(headerProject)
	if named != "" && !domain.ValidProjectID(named) {
		return access.Principal{}, connect.Errorf(connect.CodeInvalidArgument, "%s: malformed project id", headerProject)
	}
	token, bearer := strings.CutPrefix(header.Get("Authorization"), "Bearer ")
	if !bearer && header.Get("Authorization") != "" {
		return access.Principal{}, connect.Errorf(connect.CodeUnauthenticated, "Authorization: send Bearer <session>")
	}
	fromCookie := false
	if token == "" && named != "" {
		token = cookieValue(header.Values("Cookie"), sessionCookie(named))
		fromCookie = token != ""
	}
	project := named
	if sp, ok := parseSessionToken(token); ok {
		if named != "" && sp != named {
			return access.Principal{}, connect.NewError(connect.CodePermissionDenied, "the session belongs to another project than "+headerProject)
		}
		project = sp
	}
	if project == "" {
		return access.Principal{}, connect.Errorf(connect.CodeInvalidArgument, "%s: required (the project id) when not signed in", headerProject)
	}
	if pin := pinnedProject(ctx); pin != "" && project != pin {
		return access.Principal{}, pinnedRefusal(pin)
	}
	if err := s.checkOrigin(ctx, project); err != nil {
		return access.Principal{}, err
	}
	// A project created through another node is known here once this node
	// has applied the system stream up to Cairn-Min-Sys-Seq.
	if err := s.waitMinSeqHeader(ctx, info, headerMinSysSeq, streams.SystemStream); err != nil {
		return access.Principal{}, err
	}
	if _, err := s.project(project); err != nil {
		if errors.Is(err, errNotFound) {
			return access.Principal{}, domain.Errorf(domain.KindNotFound, "project %q not found", project)
		}
		return access.Principal{}, err
	}
	if err := s.waitMinSeq(ctx, info, streams.ProjectStream(project)); err != nil {
		return access.Principal{}, err
	}
	p := access.Principal{Project: project}
	if token != "" {
		var err error
		if p, err = s.credential(ctx, info, token, named, true); err != nil {
			if fromCookie {
				return access.Principal{}, cookieRefused(project, err)
			}
			return access.Principal{}, err
		}
		if !p.IsUser() {
			return access.Principal{}, connect.NewError(connect.CodePermissionDenied, "AccountService is for end users; servers use UsersService with an API key")
		}
		if p.Project != project {
			return access.Principal{}, connect.NewError(connect.CodePermissionDenied, "the credential belongs to another project")
		}
	}
	switch {
	case r.client == signedIn && !p.IsUser():
		return access.Principal{}, connect.NewError(connect.CodeUnauthenticated, "sign in first: no session")
	case p.MfaPending && !r.mfaOK:
		return access.Principal{}, connect.NewError(connect.CodePermissionDenied, "complete the second factor first (CompleteMfa)")
	}
	return p, nil
}

// credential resolves a bearer token: with jwt, a JWT of the project the
// Cairn-Project header names; otherwise a project key, a session or the
// operator key. Keys and sessions name their project, and one made on
// another node is known here once this node has applied it: Cairn-Min-Seq
// is honoured before the lookup.
func (s *Server) credential(ctx context.Context, info *connect.CallInfo, token, named string, jwt bool) (access.Principal, error) {
	if jwt && looksLikeJWT(token) {
		if !domain.ValidProjectID(named) {
			return access.Principal{}, connect.Errorf(connect.CodeInvalidArgument, "%s: required with a JWT", headerProject)
		}
		return s.jwtPrincipal(named, token)
	}
	if isOperatorToken(token) {
		// A console session made on another node is known here once this
		// node has applied the system stream that far.
		if err := s.waitMinSeqHeader(ctx, info, headerMinSysSeq, streams.SystemStream); err != nil {
			return access.Principal{}, err
		}
	}
	project, ok := parseSessionToken(token)
	if !ok {
		project, _, ok = parseKeyToken(token)
	}
	if v := info.RequestHeader().Get(headerMinSeq); ok && v != "" {
		// The stream's name is built only when asked for: most calls
		// send no Cairn-Min-Seq.
		if err := s.waitSeq(ctx, v, headerMinSeq, streams.ProjectStream(project)); err != nil {
			return access.Principal{}, err
		}
	}
	return s.auth.authenticateToken(token)
}

// cookieValue returns the value of the named cookie in Cookie headers.
func cookieValue(headers []string, name string) string {
	for _, h := range headers {
		if c, err := http.ParseCookie(h); err == nil {
			for _, ck := range c {
				if ck.Name == name {
					return ck.Value
				}
			}
		}
	}
	return ""
}

// guardedStream authorizes each received request against its project.
type guardedStream struct {
	connect.ServerStream
	ctx  context.Context
	s    *Server
	rule rule
	p    access.Principal
	info *connect.CallInfo
	// cookies: no Authorization was sent; the project's session cookie,
	// if any, is the caller.
	cookies bool
	// unary: the call takes a slot of its project (slotted); admitted: it
	// was charged and holds slot (if one was needed).
	unary, admitted bool
	slot            *inflight.Slot
	labelled        bool // the goroutine carries the project's profiler label
}

// admit charges the call to project (a stream: each message) and, for a
// unary call, waits for one of the project's slots.
func (g *guardedStream) admit(project string, limits *eventsv1.ProjectLimits) error {
	if g.admitted && g.unary {
		return nil
	}
	g.admitted = true
	if err := g.s.rates.charge(g.ctx, project, limits, g.p); err != nil {
		return err
	}
	g.labelProject(project)
	if !g.unary {
		return nil
	}
	slot, err := g.s.rates.slot(g.ctx, project, limits, g.p)
	if err != nil {
		return err
	}
	g.slot = slot
	return nil
}

// labelProject labels the call's goroutine with its project until done,
// so that a CPU profile splits the node's work by project
// (`go tool pprof -tagfocus project=<id>`; the projector and realtime
// feed of each project carry the same label).
func (g *guardedStream) labelProject(project string) {
	if !g.labelled {
		g.labelled = true
		pprof.SetGoroutineLabels(pprof.WithLabels(g.ctx, pprof.Labels("project", project)))
	}
}

// done gives the call's slot back and its goroutine's label (an HTTP/1.1
// connection's goroutine serves the next call, maybe of another project).
func (g *guardedStream) done() {
	g.slot.Release()
	if g.labelled {
		pprof.SetGoroutineLabels(g.ctx)
	}
}

func (g *guardedStream) Receive(msg any) error {
	if err := g.ServerStream.Receive(msg); err != nil {
		return err
	}
	if ps, ok := msg.(projectScoped); ok {
		noteProject(g.ctx, ps.GetProjectId())
	}
	if g.rule.operator {
		if err := g.s.checkOrigin(g.ctx, ""); err != nil {
			return err
		}
		if err := g.memberMay(msg); err != nil {
			return err
		}
		// Operator calls (the project registry) read the system stream.
		return g.s.waitMinSeq(g.ctx, g.info, streams.SystemStream)
	}
	project := ""
	if ps, ok := msg.(projectScoped); ok {
		project = ps.GetProjectId()
	}
	if pin := pinnedProject(g.ctx); pin != "" {
		if project == "" {
			// A site's page need not know its project: its API is pinned.
			project = fillProjectID(msg, pin)
		}
		if project != pin {
			return pinnedRefusal(pin)
		}
	}
	if err := g.s.checkOrigin(g.ctx, project); err != nil {
		return err
	}
	if g.cookies {
		g.cookies = false // a stream's later messages keep the first caller
		if err := g.cookieCaller(project); err != nil {
			return err
		}
	}
	switch {
	case g.p.Kind == access.Anonymous && g.rule.guests:
		// Only rules with guests set get here without a credential; the
		// handler applies the project's permissions for guests.
		if !domain.ValidProjectID(project) {
			return domain.FieldError("project_id", "required")
		}
	case g.p.IsUser():
		// Only rules with users set get here with a user (accessInterceptor).
		if project != g.p.Project {
			return domain.Errorf(domain.KindPermissionDenied, "the session does not belong to project %q", project)
		}
	default:
		if err := access.Authorize(g.p, project, g.rule.scope, g.s.now()); err != nil {
			return err
		}
		if g.p.Kind == access.Member {
			if role, _ := g.p.RoleIn(project); g.rule.member != "" && !role.AtLeast(g.rule.member) {
				return domain.Errorf(domain.KindPermissionDenied, "role %s on project %q does not allow this (needs %s)", role, project, g.rule.member)
			}
			// Handlers see the account as a key with its role's scopes
			// here (CanGrant); a stream's messages all name one project.
			setPrincipal(g.ctx, g.p.In(project))
		}
	}
	// A project created (or changed) through another node is known here
	// once this node has applied the system stream up to Cairn-Min-Sys-Seq.
	if err := g.s.waitMinSeqHeader(g.ctx, g.info, headerMinSysSeq, streams.SystemStream); err != nil {
		return err
	}
	stream := streams.SystemStream
	if project != "" {
		pr, err := g.s.project(project)
		if err != nil {
			if errors.Is(err, errNotFound) && g.p.Kind == access.Anonymous {
				return hiddenNotFound(msg) // hidden.go
			}
			if errors.Is(err, errNotFound) {
				return domain.Errorf(domain.KindNotFound, "project %q not found", project)
			}
			return err
		}
		// Charged once the caller is known to be the project's (or its
		// guest): a refused credential costs the project nothing. Keys and
		// sessions were charged before the body was read (admitted).
		if err := g.admit(project, pr.GetLimits()); err != nil {
			return err
		}
		stream = streams.ProjectStream(project)
	}
	return g.s.waitMinSeq(g.ctx, g.info, stream)
}

// memberMay checks an operator account on an operator procedure: it needs
// the rule's role on the project msg names. Without one it learns nothing:
// the project is "not found" whether it exists or not.
func (g *guardedStream) memberMay(msg any) error {
	if g.p.Kind != access.Member {
		return nil
	}
	ps, ok := msg.(projectScoped)
	if !ok || ps.GetProjectId() == "" {
		return nil
	}
	project := ps.GetProjectId()
	role, ok := g.p.RoleIn(project)
	if !ok {
		return domain.Errorf(domain.KindNotFound, "project %q not found", project)
	}
	if !role.AtLeast(g.rule.member) {
		return domain.Errorf(domain.KindPermissionDenied, "role %s on project %q does not allow this (needs %s)", role, project, g.rule.member)
	}
	return nil
}

// fillProjectID sets an empty project_id of msg to project and returns
// what msg now names.
func fillProjectID(msg any, project string) string {
	m, ok := msg.(proto.Message)
	if !ok {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("project_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	r.Set(fd, protoreflect.ValueOfString(project))
	return project
}

// cookieCaller makes the project's session cookie, if the request carries
// one, the caller. A cookie that is present but not accepted is an error,
// never a silent guest.
func (g *guardedStream) cookieCaller(project string) error {
	token := ""
	if domain.ValidProjectID(project) {
		token = cookieValue(g.info.RequestHeader().Values("Cookie"), sessionCookie(project))
	}
	if token == "" {
		if !g.rule.guests {
			return domain.Errorf(domain.KindUnauthenticated, "missing credential: send Authorization: Bearer <key or session>, or sign in (session cookie)")
		}
		return nil
	}
	if err := g.s.waitMinSeq(g.ctx, g.info, streams.ProjectStream(project)); err != nil {
		return err
	}
	p, err := g.s.auth.authenticate("Bearer " + token)
	if err == nil && (!p.IsUser() || p.Project != project) {
		err = errBadCredential
	}
	if err != nil {
		return cookieRefused(project, err)
	}
	if p.MfaPending {
		return connect.NewError(connect.CodePermissionDenied, "complete the second factor first (CompleteMfa)")
	}
	g.p = p
	setPrincipal(g.ctx, p)
	return nil
}

// cookieRefused says why a session cookie was not accepted.
func cookieRefused(project string, err error) error {
	if de, ok := errors.AsType[*domain.Error](err); ok && de.Kind == domain.KindUnauthenticated {
		return domain.Errorf(domain.KindUnauthenticated, "session cookie %s is not a live session of project %q (signed out or expired): sign in again", sessionCookie(project), project)
	}
	return err
}

// maxMinSeqWait bounds how long a Cairn-Min-Seq request waits when the
// caller set no deadline.
const maxMinSeqWait = 10 * time.Second

// waitMinSeq blocks until this node has applied the sequence the caller
// asked for in Cairn-Min-Seq: read-your-writes across nodes.
func (s *Server) waitMinSeq(ctx context.Context, info *connect.CallInfo, stream string) error {
	return s.waitMinSeqHeader(ctx, info, headerMinSeq, stream)
}

// waitMinSeqHeader waits until stream is applied up to the sequence in
// header, if the request has one.
func (s *Server) waitMinSeqHeader(ctx context.Context, info *connect.CallInfo, header, stream string) error {
	return s.waitSeq(ctx, info.RequestHeader().Get(header), header, stream)
}

// waitSeq waits until stream is applied up to sequence v (a header's
// value; empty: no wait).
func (s *Server) waitSeq(ctx context.Context, v, header, stream string) error {
	if v == "" {
		return nil
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return connect.Errorf(connect.CodeInvalidArgument, "%s: must be an unsigned integer", header)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxMinSeqWait)
		defer cancel()
	}
	if err := s.reads.WaitApplied(ctx, stream, seq); err != nil {
		return connect.Errorf(connect.CodeUnavailable, "this node has not applied sequence %d yet; retry", seq).WithCause(err)
	}
	return nil
}
