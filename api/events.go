package api

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairn-dev/cairn/domain"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
	"github.com/cairn-dev/cairn/streams"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

type eventsHandler struct{ *Server }

// logScope is the stream and subject space one audit request reads.
type logScope struct {
	stream string
	// root is the subject prefix hidden from callers ("cairn.<p>.").
	root   string
	filter string
}

func (h *eventsHandler) scope(project, subject string) (logScope, error) {
	var sc logScope
	if project == "" {
		// Only operators get here (access.Authorize refuses keys without a
		// project): the instance's system log.
		sc.stream, sc.root = streams.SystemStream, streams.SystemPrefix
	} else {
		sc.stream, sc.root = streams.ProjectStream(project), streams.ProjectPrefix(project)
	}
	if subject == "" {
		subject = ">"
	}
	if err := streams.ValidRelativeFilter(subject); err != nil {
		return sc, domain.FieldError("subject", "not a subject filter: use tokens separated by '.', with '*' or a final '>'")
	}
	sc.filter = sc.root + subject
	return sc, nil
}

func (h *eventsHandler) event(sc logScope, m streams.StoredMsg) (*cairnv1.Event, error) {
	env, err := eventlog.Decode(m.Data)
	if err != nil {
		return nil, err
	}
	redact(env.ProtoReflect())
	return &cairnv1.Event{Seq: m.Seq, Subject: strings.TrimPrefix(m.Subject, sc.root),
		Time: timestamppb.New(m.Time), Envelope: env}, nil
}

// Times a read can start at: NATS takes them in nanoseconds since 1970 as
// an int64, so a later one overflowed and read the whole log from 1.
var (
	minReadTime = time.Unix(0, math.MinInt64).UTC()
	maxReadTime = time.Unix(0, math.MaxInt64).UTC()
)

// checkTime refuses a time outside what a read can start at.
func checkTime(field string, ts *timestamppb.Timestamp) error {
	if ts == nil {
		return nil
	}
	if err := ts.CheckValid(); err != nil {
		return domain.FieldError(field, "not a valid time: %v", err)
	}
	if t := ts.AsTime(); t.Before(minReadTime) || t.After(maxReadTime) {
		return domain.FieldError(field, "must be between %s and %s", minReadTime.Format(time.RFC3339), maxReadTime.Format(time.RFC3339))
	}
	return nil
}

func (h *eventsHandler) ListEvents(ctx context.Context, req *cairnv1.ListEventsRequest) (*cairnv1.ListEventsResponse, error) {
	sc, err := h.scope(req.GetProjectId(), req.GetSubject())
	if err != nil {
		return nil, err
	}
	if err := checkTime("start_time", req.GetStartTime()); err != nil {
		return nil, err
	}
	if err := req.GetEndTime().CheckValid(); req.GetEndTime() != nil && err != nil {
		return nil, domain.FieldError("end_time", "not a valid time: %v", err) // only compared: any valid time will do
	}
	start := req.GetStartSeq()
	if req.GetPageToken() != "" {
		t, err := decodeToken(req.GetPageToken())
		if err != nil {
			return nil, err
		}
		if start, err = strconv.ParseUint(t, 10, 64); err != nil {
			return nil, domain.FieldError("page_token", "malformed page token")
		}
	}
	opts := streams.ReadOptions{Filters: []string{sc.filter}, StartSeq: start}
	if start == 0 && req.GetStartTime() != nil {
		opts.StartTime = req.GetStartTime().AsTime()
	}
	n := pageSize(req.GetPageSize())
	res := &cairnv1.ListEventsResponse{}
	for m, err := range h.store.Read(ctx, sc.stream, opts) {
		if err != nil {
			return nil, err
		}
		if (req.GetEndSeq() != 0 && m.Seq > req.GetEndSeq()) ||
			(req.GetEndTime() != nil && !m.Time.Before(req.GetEndTime().AsTime())) {
			break
		}
		if len(res.Events) == n {
			res.NextPageToken = encodeToken(strconv.FormatUint(m.Seq, 10))
			break
		}
		e, err := h.event(sc, m)
		if err != nil {
			return nil, err
		}
		res.Events = append(res.Events, e)
	}
	return res, nil
}

func (h *eventsHandler) StreamEvents(ctx context.Context, req *cairnv1.StreamEventsRequest, stream cairnv1connect.EventsServiceStreamEventsServerStream) error {
	sc, err := h.scope(req.GetProjectId(), req.GetSubject())
	if err != nil {
		return err
	}
	if err := checkTime("start_time", req.GetStartTime()); err != nil {
		return err
	}
	opts := streams.ReadOptions{Filters: []string{sc.filter}, StartSeq: req.GetStartSeq(), Follow: true}
	switch {
	case req.GetStartSeq() != 0:
	case req.GetStartTime() != nil:
		opts.StartTime = req.GetStartTime().AsTime()
	default:
		// Only new events: start after the stream's current last message.
		info, err := h.store.StreamInfo(ctx, sc.stream)
		if err != nil {
			return err
		}
		opts.StartSeq = info.LastSeq + 1
	}
	ctx, cancel := h.streamContext(ctx)
	defer cancel()
	// Tell the client the stream is open before the first event arrives.
	if err := stream.SendHeaders(); err != nil {
		return err
	}
	for m, err := range h.store.Read(ctx, sc.stream, opts) {
		if err != nil {
			return h.stopped(err)
		}
		e, err := h.event(sc, m)
		if err != nil {
			return err
		}
		if err := stream.Send(&cairnv1.StreamEventsResponse{Event: e}); err != nil {
			return h.stopped(err)
		}
	}
	return h.stopped(nil)
}

// redact clears every field marked debug_redact (secret hashes), however
// deep, so the audit log never shows them.
func redact(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDebugRedact() {
			m.Clear(fd)
			return true
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				redact(v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				redact(mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			redact(v.Message())
		}
		return true
	})
}
