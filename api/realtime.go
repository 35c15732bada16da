package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/database/query"
	"github.com/cairn-dev/cairn/domain/permission"
	"github.com/cairn-dev/cairn/projections"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/realtime"
)

// RealtimeLimits bound realtime (Config); zero means the default.
type RealtimeLimits = realtime.Limits

type realtimeHandler struct{ *Server }

// rtResource is what kind of resource an event is about.
type rtResource int

const (
	rtNone rtResource = iota
	rtDocument
	rtFile
	rtTeam
	rtMembership
	rtAccount
	rtExecution
)

// rtPrepared is computed once per event for every subscriber: the
// resource's permissions as they are now, and the payload.
type rtPrepared struct {
	resource rtResource
	// enabled: the resource's containers are enabled (end users see
	// nothing of a disabled database, collection or bucket).
	enabled        bool
	containerPerms []permission.Permission
	itemPerms      []permission.Permission
	itemSecurity   bool
	fields         map[string]any // a document's attributes, for filters
	teamID, userID string         // team of a team/membership event; user of a membership/account event
	payload        *structpb.Struct
	// wsFrames are the event's WebSocket frames, header included, by set
	// of matched channels (realtime.Subscriber.MatchedSet): most
	// subscribers share channels, so an event is encoded once per set and
	// the same bytes go to each of them.
	wsFrames sync.Map
	// responses are its messages by matched channels (rtClient.response).
	responses sync.Map
	// last is the fan-out's last decision about the event: most
	// subscribers in a row share their audience and channels, and then
	// their decision and frame.
	last struct {
		sync.Mutex
		rtDecision
	}
}

// rtDecision is what subscribers of audience aud whose matched channels
// are set receive of an event at access generation gen: frame, or nothing
// (nil).
type rtDecision struct {
	aud   rtAudience
	set   uint64
	gen   uint64
	frame []byte
	valid bool
}

// rtAudience is what decides, besides its channels, whether a subscriber
// receives an event: who it is to permissions (Server.subject) and the
// kinds it asked for. Subscriptions with filters have none (shared false):
// their decisions are their own.
type rtAudience struct {
	shared bool
	kinds  uint8  // bit k: realtime.Kind k asked for; 0: all
	who    string // subjectKey
}

// subjectKey names the permission subject Server.subject resolves p to:
// principals with equal keys get equal subjects (in one project, at one
// access generation).
func subjectKey(p access.Principal) string {
	switch p.Kind {
	case access.Operator:
		return "operator"
	case access.APIKey, access.Member:
		return "key"
	case access.User:
		return "user:" + p.ID
	}
	return "guest"
}

// audienceOf is v's audience.
func audienceOf(v *rtView) rtAudience {
	if len(v.filters) > 0 {
		return rtAudience{}
	}
	a := rtAudience{shared: true, who: subjectKey(v.p)}
	for k, on := range v.kinds {
		if on {
			a.kinds |= 1 << k
		}
	}
	return a
}

// rtView is one subscriber's current subscription and credential; a
// WebSocket client may replace it on an open connection.
type rtView struct {
	p       access.Principal
	kinds   map[realtime.Kind]bool
	filters []query.Filter
	aud     rtAudience // audienceOf, set with withPrincipal
}

// withPrincipal is v for principal p.
func (v rtView) withPrincipal(p access.Principal) *rtView {
	v.p = p
	v.aud = audienceOf(&v)
	return &v
}

// rtClient decides, per event, what one subscriber receives.
type rtClient struct {
	s       *Server
	project string
	view    atomic.Pointer[rtView]
	sub     *realtime.Subscriber
	// ws is a WebSocket client's sink, beside what each delivery reads
	// here: one allocation, not two, for the fan-out to reach per event.
	ws wsLive

	mu    sync.Mutex
	subj  permission.Subject
	gen   uint64 // access generation subj was resolved at
	view0 *rtView
}

var rtKinds = map[cairnv1.EventKind]realtime.Kind{
	cairnv1.EventKind_EVENT_KIND_CREATE: realtime.KindCreate,
	cairnv1.EventKind_EVENT_KIND_UPDATE: realtime.KindUpdate,
	cairnv1.EventKind_EVENT_KIND_DELETE: realtime.KindDelete,
}

// newView validates a subscription's channels, kinds and filters for
// principal p; maxChannels is the hub's limit.
func newView(p access.Principal, req *cairnv1.SubscribeRequest, maxChannels int) (*rtView, error) {
	v := &rtView{p: p}
	// The WebSocket's query string has no schema to enforce these.
	if n := len(req.GetChannels()); n == 0 || n > maxChannels {
		return nil, domain.FieldError("channels", "name 1 to %d channels, not %d", maxChannels, n)
	}
	for _, c := range req.GetChannels() {
		if err := realtime.ValidChannel(c); err != nil {
			return nil, domain.FieldError("channels", "%v", err)
		}
	}
	if len(req.GetKinds()) > 0 {
		v.kinds = map[realtime.Kind]bool{}
		for _, k := range req.GetKinds() {
			v.kinds[rtKinds[k]] = true
		}
	}
	if fs := req.GetFilters(); len(fs) > 0 {
		v.filters = filtersIn(fs)
		if err := checkRealtimeFilters(v.filters); err != nil {
			return nil, err
		}
	}
	return v.withPrincipal(p), nil
}

// checkRealtimeFilters allows what realtime evaluates on one document:
// every operator but search (query.Prepare), with the realtime limits.
func checkRealtimeFilters(fs []query.Filter) error {
	return query.Prepare(fs, "filters", query.DefaultLimits())
}

// subject returns the subscriber's permission subject, resolved again
// after any event that may have changed it (a membership, a user's labels).
func (c *rtClient) subject(v *rtView) (permission.Subject, error) {
	return c.subjectAt(v, c.sub.AccessGeneration())
}

// subjectAt is subject at access generation gen.
func (c *rtClient) subjectAt(v *rtView, gen uint64) (permission.Subject, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view0 == v && c.gen == gen && c.view0 != nil {
		return c.subj, nil
	}
	subj, err := c.s.subject(c.project, v.p)
	if err != nil {
		return subj, err
	}
	c.subj, c.gen, c.view0 = subj, gen, v
	return subj, nil
}

// accept reports whether the subscriber may receive e now.
func (c *rtClient) accept(e *realtime.Event) bool {
	pr, _ := e.Prepared(c.s.prepareEvent).(*rtPrepared)
	return c.acceptAt(e, pr, c.view.Load(), c.sub.AccessGeneration())
}

// liveFrame is e's frame for the subscriber, whose channels e matched as
// set, or nil when it may not receive e. The fan-out calls it for every
// subscriber in turn: a run of subscribers of one audience and set gets
// the first one's decision (rtPrepared.last) without deciding again.
func (c *rtClient) liveFrame(e *realtime.Event, set uint64) []byte {
	pr, _ := e.Prepared(c.s.prepareEvent).(*rtPrepared)
	if pr == nil {
		return nil
	}
	v, gen := c.view.Load(), c.sub.AccessGeneration()
	if v.aud.shared {
		pr.last.Lock()
		d := &pr.last.rtDecision
		if d.valid && d.set == set && d.gen == gen && d.aud == v.aud {
			f := d.frame
			pr.last.Unlock()
			return f
		}
		pr.last.Unlock()
	}
	var frame []byte
	if c.acceptAt(e, pr, v, gen) {
		var err error
		if frame, err = c.wsFrame(e, set); err != nil {
			c.s.logger.Warn("realtime: frame", "project", c.project, "err", err)
		}
	}
	if v.aud.shared {
		pr.last.Lock()
		pr.last.rtDecision = rtDecision{aud: v.aud, set: set, gen: gen, frame: frame, valid: true}
		pr.last.Unlock()
	}
	return frame
}

// acceptAt reports whether the subscriber, with view v at access
// generation gen, may receive e (prepared as pr).
func (c *rtClient) acceptAt(e *realtime.Event, pr *rtPrepared, v *rtView, gen uint64) bool {
	if v.kinds != nil && !v.kinds[e.Route.Kind] {
		return false
	}
	if pr == nil || pr.resource == rtNone {
		return false
	}
	if len(v.filters) > 0 && pr.resource != rtDocument {
		return false
	}
	subj, err := c.subjectAt(v, gen)
	if err != nil {
		return false
	}
	server := subj.Kind == permission.APIKey || subj.Kind == permission.Operator
	switch pr.resource {
	case rtDocument, rtFile:
		if !server && !pr.enabled {
			return false
		}
		if !permission.Check(subj, permission.Read, pr.containerPerms, pr.itemPerms, pr.itemSecurity) {
			return false
		}
		return len(v.filters) == 0 || query.Match(v.filters, pr.fields)
	case rtTeam, rtMembership:
		if server {
			return true
		}
		if pr.resource == rtMembership && pr.userID == subj.UserID && subj.UserID != "" {
			return true
		}
		return slices.ContainsFunc(subj.Teams, func(m permission.Membership) bool { return m.TeamID == pr.teamID })
	case rtAccount:
		return subj.Kind == permission.User && pr.userID == subj.UserID
	case rtExecution:
		// Keys see every execution; a user those they started, as in Appwrite.
		return server || (subj.Kind == permission.User && pr.userID == subj.UserID)
	}
	return false
}

// prepareEvent reads what every subscriber's decision about e needs.
func (s *Server) prepareEvent(e *realtime.Event) any {
	pr := &rtPrepared{}
	var out proto.Message
	switch e.Env.GetPayload().(type) {
	case *eventsv1.Envelope_DocumentCreated, *eventsv1.Envelope_DocumentUpdated, *eventsv1.Envelope_DocumentDeleted:
		d := documentOf(e.Env)
		db, c, err := (&databasesHandler{Server: s}).loadCollection(e.Project, d.GetDatabaseId(), d.GetCollectionId())
		if err != nil || d.GetCollectionUid() != c.GetUid() {
			return pr
		}
		schema, err := s.reads.Schema(c)
		if err != nil {
			return pr
		}
		if pr.fields, err = projections.Fields(schema, d); err != nil {
			return pr
		}
		doc, err := docOut(&coll{project: e.Project, c: c, schema: schema}, d, pr.fields, nil)
		if err != nil {
			return pr
		}
		pr.resource, out = rtDocument, doc
		pr.enabled = db.GetEnabled() && c.GetEnabled()
		pr.containerPerms, _ = permission.ParsePermissions(c.GetPermissions())
		pr.itemSecurity = c.GetDocumentSecurity()
		pr.itemPerms, _ = permission.ParsePermissions(d.GetPermissions())
	case *eventsv1.Envelope_FileCreated, *eventsv1.Envelope_FileUpdated, *eventsv1.Envelope_FileDeleted:
		f := fileOf(e.Env)
		b, err := s.reads.Bucket(e.Project, f.GetBucketId())
		if err != nil || b.GetUid() != f.GetBucketUid() {
			return pr
		}
		pr.resource, out = rtFile, fileOut(f)
		pr.enabled = b.GetEnabled()
		pr.containerPerms, _ = permission.ParsePermissions(b.GetPermissions())
		pr.itemSecurity = b.GetFileSecurity()
		pr.itemPerms, _ = permission.ParsePermissions(f.GetPermissions())
	case *eventsv1.Envelope_TeamCreated, *eventsv1.Envelope_TeamUpdated, *eventsv1.Envelope_TeamDeleted:
		t := teamOf(e.Env)
		to, err := teamOut(t)
		if err != nil {
			return pr
		}
		pr.resource, pr.teamID, out = rtTeam, t.GetId(), to
	case *eventsv1.Envelope_MembershipCreated, *eventsv1.Envelope_MembershipUpdated, *eventsv1.Envelope_MembershipDeleted:
		m := membershipOf(e.Env)
		pr.resource, pr.teamID, pr.userID, out = rtMembership, m.GetTeamId(), m.GetUserId(), membershipOut(m)
	case *eventsv1.Envelope_ExecutionCreated, *eventsv1.Envelope_ExecutionUpdated:
		x := e.Env.GetExecutionCreated().GetExecution()
		if x == nil {
			x = e.Env.GetExecutionUpdated().GetExecution()
		}
		pr.resource, pr.userID, out = rtExecution, x.GetUserId(), executionOut(x)
	default:
		u := userOf(e.Env)
		if u == nil {
			return pr
		}
		// userOut is the account as its owner sees it: no hashes.
		pr.resource, pr.userID, out = rtAccount, u.GetId(), userOut(u)
	}
	st, err := toStruct(out)
	if err != nil {
		pr.resource = rtNone
		return pr
	}
	pr.payload = st
	return pr
}

func toStruct(m proto.Message) (*structpb.Struct, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	st := &structpb.Struct{}
	return st, protojson.Unmarshal(b, st)
}

func documentOf(env *eventsv1.Envelope) *eventsv1.Document {
	if d := env.GetDocumentCreated().GetDocument(); d != nil {
		return d
	}
	if d := env.GetDocumentUpdated().GetDocument(); d != nil {
		return d
	}
	return env.GetDocumentDeleted().GetDocument()
}

func fileOf(env *eventsv1.Envelope) *eventsv1.File {
	if f := env.GetFileCreated().GetFile(); f != nil {
		return f
	}
	if f := env.GetFileUpdated().GetFile(); f != nil {
		return f
	}
	return env.GetFileDeleted().GetFile()
}

func teamOf(env *eventsv1.Envelope) *eventsv1.Team {
	if t := env.GetTeamCreated().GetTeam(); t != nil {
		return t
	}
	if t := env.GetTeamUpdated().GetTeam(); t != nil {
		return t
	}
	return env.GetTeamDeleted().GetTeam()
}

func membershipOf(env *eventsv1.Envelope) *eventsv1.Membership {
	if m := env.GetMembershipCreated().GetMembership(); m != nil {
		return m
	}
	if m := env.GetMembershipUpdated().GetMembership(); m != nil {
		return m
	}
	return env.GetMembershipDeleted().GetMembership()
}

func userOf(env *eventsv1.Envelope) *eventsv1.User {
	switch p := env.GetPayload().(type) {
	case *eventsv1.Envelope_UserCreated:
		return p.UserCreated.GetUser()
	case *eventsv1.Envelope_UserUpdated:
		return p.UserUpdated.GetUser()
	case *eventsv1.Envelope_UserDeleted:
		return p.UserDeleted.GetUser()
	case *eventsv1.Envelope_SessionCreated:
		return p.SessionCreated.GetUser()
	case *eventsv1.Envelope_SessionUpdated:
		return p.SessionUpdated.GetUser()
	case *eventsv1.Envelope_SessionsDeleted:
		return p.SessionsDeleted.GetUser()
	case *eventsv1.Envelope_PasskeyRegistered:
		return p.PasskeyRegistered.GetUser()
	case *eventsv1.Envelope_PasskeyRemoved:
		return p.PasskeyRemoved.GetUser()
	case *eventsv1.Envelope_PasskeyUsed:
		return p.PasskeyUsed.GetUser()
	}
	return nil
}

var rtKindOut = map[realtime.Kind]cairnv1.EventKind{
	realtime.KindCreate: cairnv1.EventKind_EVENT_KIND_CREATE,
	realtime.KindUpdate: cairnv1.EventKind_EVENT_KIND_UPDATE,
	realtime.KindDelete: cairnv1.EventKind_EVENT_KIND_DELETE,
}

var rtStatusOut = map[realtime.Status]cairnv1.ConnectionStatus{
	realtime.StatusConnected: cairnv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED,
	realtime.StatusResuming:  cairnv1.ConnectionStatus_CONNECTION_STATUS_RESUMING,
	realtime.StatusLive:      cairnv1.ConnectionStatus_CONNECTION_STATUS_LIVE,
}

// response is a delivery as the protocol sends it.
func (c *rtClient) response(d realtime.Delivery) *cairnv1.SubscribeResponse {
	switch {
	case d.Event != nil:
		// One message per event and set of matched channels, shared by the
		// subscribers it goes to, so the codec encodes it once
		// (sharedEncodings).
		e := d.Event
		pr, _ := e.Prepared(c.s.prepareEvent).(*rtPrepared)
		key := strings.Join(d.Channels, "\x00")
		if m, ok := pr.responses.Load(key); ok {
			return m.(*cairnv1.SubscribeResponse)
		}
		m, _ := pr.responses.LoadOrStore(key, &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_Event{Event: &cairnv1.RealtimeEvent{
			Sequence: e.Seq, Events: e.Route.Names, Channels: d.Channels, Timestamp: timestamppb.New(e.Time),
			Kind: rtKindOut[e.Route.Kind], Payload: pr.payload,
		}}})
		return m.(*cairnv1.SubscribeResponse)
	case d.ResyncFrom > 0:
		return &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_Resync{Resync: &cairnv1.ResyncNeeded{
			FirstAvailable: d.ResyncFrom, Reason: d.Reason + ": reload; the events from first_available follow"}}}
	default:
		return &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_State{State: &cairnv1.ConnectionState{
			Status: rtStatusOut[d.State], Sequence: d.Seq}}}
	}
}

// wsFrame is e as a WebSocket frame for the subscribers whose matched
// channels are set.
func (c *rtClient) wsFrame(e *realtime.Event, set uint64) ([]byte, error) {
	pr, _ := e.Prepared(c.s.prepareEvent).(*rtPrepared)
	if b, ok := pr.wsFrames.Load(set); ok {
		return b.([]byte), nil
	}
	var ch []string
	for i, name := range e.Route.Channels {
		if set&(1<<i) != 0 {
			ch = append(ch, name)
		}
	}
	b, err := protojson.Marshal(c.response(realtime.Delivery{Event: e, Channels: ch}))
	if err != nil {
		return nil, fmt.Errorf("realtime frame of event %d: %w", e.Seq, err)
	}
	f, _ := pr.wsFrames.LoadOrStore(set, wsTextFrame(b))
	return f.([]byte), nil
}

// closing is the last message of a subscription the server ends.
func closing(err error) *cairnv1.SubscribeResponse {
	return &cairnv1.SubscribeResponse{Message: &cairnv1.SubscribeResponse_Closing{Closing: &cairnv1.Closing{Reason: err.Error()}}}
}

// run is Subscriber.Run, metered: the subscription's open time and every
// event it sends count as the project's realtime usage.
func (c *rtClient) run(ctx context.Context, send func(realtime.Delivery) error) error {
	conn := c.s.meter.Open(c.project)
	defer conn.Close()
	return c.sub.Run(ctx, c.accept, func(d realtime.Delivery) error {
		err := send(d)
		if err == nil && d.Event != nil {
			c.s.meter.Delivered(c.project)
		}
		return err
	})
}

// subscribe opens a subscription for p.
func (s *Server) subscribe(project string, p access.Principal, req *cairnv1.SubscribeRequest) (*rtClient, error) {
	v, err := newView(p, req, s.hub.Limits().MaxChannels)
	if err != nil {
		return nil, err
	}
	sub, err := s.hub.Subscribe(project, req.GetChannels(), req.GetAfterSequence())
	if errors.Is(err, realtime.ErrTooMany) {
		return nil, domain.Errorf(domain.KindResourceExhausted, "project %q has the most realtime connections this node takes (%d)", project, s.hub.Limits().MaxPerProject)
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	c := &rtClient{s: s, project: project, sub: sub}
	c.view.Store(v)
	return c, nil
}

func (h *realtimeHandler) Subscribe(ctx context.Context, req *cairnv1.SubscribeRequest, stream cairnv1connect.RealtimeServiceSubscribeServerStream) error {
	c, err := h.subscribe(req.GetProjectId(), principal(ctx), req)
	if err != nil {
		return err
	}
	if err := h.checkStreamPresence(c, req); err != nil {
		c.sub.Close(nil)
		return err
	}
	ctx, cancel := h.streamContext(ctx)
	defer cancel()
	// A slow consumer's Send may block on flow control: ending the
	// subscription cancels the stream.
	go func() {
		select {
		case <-c.sub.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := stream.SendHeaders(); err != nil {
		c.sub.Close(nil)
		return err
	}
	send := func(d realtime.Delivery) error { return stream.Send(c.response(d)) }
	if len(req.GetPresenceJoin()) > 0 || len(req.GetPresenceWatch()) > 0 {
		snd := &streamSender{stream: stream, queue: make(chan *cairnv1.SubscribeResponse, streamPresenceQueue)}
		pres, err := h.startStreamPresence(ctx, c, req, snd)
		if err != nil {
			c.sub.Close(nil)
			return err
		}
		defer pres.close()
		go snd.drain(ctx)
		send = func(d realtime.Delivery) error { return snd.send(c.response(d)) }
	}
	err = c.run(ctx, send)
	if cause := c.sub.Err(); cause != nil {
		// Cut off (the Send it interrupted failed for that reason), not
		// a client that left.
		err = cause
	}
	switch {
	case errors.Is(err, realtime.ErrSlowConsumer):
		_ = stream.Send(closing(err))
		return connect.NewError(connect.CodeResourceExhausted, err.Error())
	case errors.Is(err, realtime.ErrClosed):
		_ = stream.Send(closing(err))
		return connect.NewError(connect.CodeUnavailable, err.Error())
	case err != nil && ctx.Err() != nil:
		if err := h.stopped(nil); err != nil {
			_ = stream.Send(closing(errStopping))
			return err
		}
		return nil // the client left
	}
	return err
}

// deliveryBudget is a project's own realtime delivery rate and burst, from
// its limits (0: the node's). The hub asks before each run of events it
// fans out, not per delivery.
func (s *Server) deliveryBudget(project string) (rate, burst int) {
	p, err := s.reads.Project(project)
	if err != nil {
		return 0, 0
	}
	l := p.GetLimits()
	return int(l.GetRealtimeDeliveriesPerSecond()), int(l.GetRealtimeDeliveryBurst())
}
