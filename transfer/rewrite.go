package transfer

import (
	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

// SecretWalker calls fn for every sealed secret in env, with the project
// and purpose it is sealed for, and stores what fn returns in its place.
// The API layer owns the purposes (api/transfer.go); a sealed field it
// does not know must make it fail, never pass through unchanged.
type SecretWalker func(env *eventsv1.Envelope, fn func(project, purpose string, sealed []byte) ([]byte, error)) error

// rewriteProject sets every project_id field in m that says from to to.
// Events carry the full state of their resource, each with its project id
// (and the actor's): all of them are string fields named project_id.
func rewriteProject(m protoreflect.Message, from, to string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.Name() == "project_id" && !fd.IsList() && !fd.IsMap():
			if v.String() == from {
				m.Set(fd, protoreflect.ValueOfString(to))
			}
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			l := v.List()
			for i := range l.Len() {
				rewriteProject(l.Get(i).Message(), from, to)
			}
		case fd.Kind() == protoreflect.MessageKind && fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					rewriteProject(mv.Message(), from, to)
					return true
				})
			}
		case fd.Kind() == protoreflect.MessageKind:
			rewriteProject(v.Message(), from, to)
		}
		return true
	})
}

// references collects the object names and name prefixes an event's
// resources point at: a fork copies only those objects.
type references struct {
	exact    map[string]bool
	prefixes map[string]bool
}

func newReferences() *references {
	return &references{exact: map[string]bool{}, prefixes: map[string]bool{}}
}

// add walks m. The names follow filestore (files/<bucket uid>-<blob uid>/…),
// sites (sites/<sha256>) and api (functions/<function uid>/<deployment>).
func (r *references) add(m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *eventsv1.File:
		if x.GetBlobUid() != "" {
			r.prefixes["files/"+x.GetBucketUid()+"-"+x.GetBlobUid()] = true
		}
	case *eventsv1.SiteFile:
		r.exact["sites/"+x.GetSha256()] = true
	case *eventsv1.FunctionDeployment:
		if x.GetObject() != "" {
			r.exact[x.GetObject()] = true
		}
		r.prefixes["functions/"+x.GetFunctionUid()+"/"+x.GetId()] = true
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() != protoreflect.MessageKind:
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				r.add(l.Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					r.add(mv.Message())
					return true
				})
			}
		default:
			r.add(v.Message())
		}
		return true
	})
}

func (r *references) has(name string) bool {
	if r.exact[name] {
		return true
	}
	// A prefix covers the name itself and everything under it "/".
	for i := range len(name) {
		if name[i] == '/' && r.prefixes[name[:i]] {
			return true
		}
	}
	return r.prefixes[name]
}

func decodeForRefs(data []byte) (*eventsv1.Envelope, error) { return eventlog.Decode(data) }
