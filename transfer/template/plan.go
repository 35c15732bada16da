package template

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain/database"
	"github.com/cairn-dev/cairn/domain/function"
)

// Op is what a change does to a resource.
type Op string

// The operations a plan holds.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	// OpReplace deletes a resource and creates it again: the API cannot
	// change it in place (an attribute, an index).
	OpReplace Op = "replace"
	OpDelete  Op = "delete"
)

// Change is one step of a plan: one API call (two for a replace).
type Change struct {
	Op Op
	// Kind is database, collection, attribute, index, bucket, function,
	// code, site, webhook, team or auth.
	Kind string
	// ID names the resource: "main/posts/title" for an attribute.
	ID string
	// Detail says what changes (the fields of an update).
	Detail string
	// Destructive changes lose data (documents, files, values, memberships,
	// deployments, stored secrets); Apply refuses them unless allowed.
	Destructive bool

	phase int
	do    func(ctx context.Context, log io.Writer) error
}

func (c Change) String() string {
	sign := map[Op]string{OpCreate: "+", OpUpdate: "~", OpReplace: "-/+", OpDelete: "-"}[c.Op]
	s := fmt.Sprintf("%-3s %s %s", sign, c.Kind, c.ID)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	if c.Destructive {
		s += "  [destructive]"
	}
	return s
}

// Plan is what Apply would do to make a project equal its file.
type Plan struct {
	Project string
	Changes []Change
	// Problems stop Apply before it changes anything: a secret whose
	// environment variable is unset where the project has no value yet.
	Problems []string

	// waits run after the changes of their phase.
	waits map[int][]func(ctx context.Context) error
}

// Empty reports whether the project already equals the file.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// Destructive returns the destructive changes.
func (p *Plan) Destructive() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Destructive {
			out = append(out, c)
		}
	}
	return out
}

// Write prints the plan for a person: one line a change, then a summary.
func (p *Plan) Write(w io.Writer) error {
	if p.Empty() {
		_, err := fmt.Fprintf(w, "No changes: project %s matches the file.\n", p.Project)
		return err
	}
	counts := map[Op]int{}
	for _, c := range p.Changes {
		fmt.Fprintln(w, c.String())
		counts[c.Op]++
	}
	for _, pr := range p.Problems {
		fmt.Fprintln(w, "problem:", pr)
	}
	_, err := fmt.Fprintf(w, "Plan for project %s: %d to create, %d to update, %d to replace, %d to delete (%d destructive).\n",
		p.Project, counts[OpCreate], counts[OpUpdate], counts[OpReplace], counts[OpDelete], len(p.Destructive()))
	return err
}

// Options are what Diff needs besides the file and the project.
type Options struct {
	// BaseDir is the directory function code paths are relative to (the
	// project file's).
	BaseDir string
	// Getenv looks up the environment variables secrets are named by.
	Getenv func(string) string
	// Build turns a function's code directory into what is uploaded; nil
	// uses the runtime's builder (Build).
	Build func(runtime, dir, entry string) ([]byte, error)
	// NewProject plans for a project that does not exist yet (a template
	// about to be applied with the project's creation): against nothing,
	// without reading the server, so that a bad file, code that does not
	// build or a missing secret is found before the project is created.
	NewProject bool
}

// Apply phases: an earlier phase's resources are what a later phase's
// need (a database before its collections, attributes before the indexes
// over them), and deletes run last, children before parents.
const (
	phaseProject = iota
	phaseDatabase
	phaseCollection
	phaseIndexDelete
	phaseAttributeDelete
	phaseAttributeCreate
	phaseIndexCreate
	phaseResources
	phaseDelete
	phaseDeleteParents
)

// planner accumulates a plan.
type planner struct {
	c    *Conn
	opt  Options
	plan *Plan
}

func (pl *planner) add(ch Change) { pl.plan.Changes = append(pl.plan.Changes, ch) }

func (pl *planner) wait(phase int, fn func(ctx context.Context) error) {
	pl.plan.waits[phase] = append(pl.plan.waits[phase], fn)
}

func (pl *planner) problem(format string, args ...any) {
	pl.plan.Problems = append(pl.plan.Problems, fmt.Sprintf(format, args...))
}

// Diff compares the file with the live project and returns the plan that
// makes the project equal the file. It reads the project (Pull) and builds
// function code to compare it with what is deployed; it changes nothing.
func Diff(ctx context.Context, c *Conn, want *File, opt Options) (*Plan, error) {
	if err := want.Validate(); err != nil {
		return nil, err
	}
	if opt.Getenv == nil {
		opt.Getenv = func(string) string { return "" }
	}
	if opt.Build == nil {
		opt.Build = Build
	}
	have := &File{Version: Version}
	if !opt.NewProject {
		var err error
		if have, err = Pull(ctx, c); err != nil {
			return nil, err
		}
	}
	pl := &planner{c: c, opt: opt, plan: &Plan{Project: c.project, waits: map[int][]func(context.Context) error{}}}
	pl.auth(want, have)
	pl.teams(want.Teams, have.Teams)
	pl.databases(want.Databases, have.Databases)
	pl.buckets(want.Buckets, have.Buckets)
	if err := pl.functions(want.Functions, have.Functions); err != nil {
		return nil, err
	}
	pl.sites(want.Sites, have.Sites)
	pl.webhooks(want.Webhooks, have.Webhooks)
	slices.SortStableFunc(pl.plan.Changes, func(a, b Change) int { return a.phase - b.phase })
	return pl.plan, nil
}

// byID indexes a list by its entries' ids.
func byID[T any](list []T, id func(T) string) map[string]T {
	m := make(map[string]T, len(list))
	for _, v := range list {
		m[id(v)] = v
	}
	return m
}

// removed lists the ids in have and not in want, sorted.
func removed[T any](want, have map[string]T) []string {
	var out []string
	for id := range have {
		if _, ok := want[id]; !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// canon is a value's comparable form: JSON with set-like lists sorted.
func canon(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"<error>": err.Error()}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{"<error>": err.Error()}
	}
	return m
}

// differs lists the top-level fields that differ between a and b.
func differs(a, b any) []string {
	// Most entries are equal: equal JSON needs no field by field look.
	if x, err := json.Marshal(a); err == nil {
		if y, err := json.Marshal(b); err == nil && bytes.Equal(x, y) {
			return nil
		}
	}
	ma, mb := canon(a), canon(b)
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		x, _ := json.Marshal(ma[k])
		y, _ := json.Marshal(mb[k])
		if string(x) != string(y) {
			out = append(out, k)
		}
	}
	return out
}

// sorted is a sorted copy of a set-like list (nil when empty, so that
// absent and empty compare equal).
func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(s))
}

func sameEnabled(b *bool) *bool { return enabledFlag(enabled(b)) }

// The comparable forms of the resources: what the API can change in
// place, with set-like lists sorted and defaults filled in.

func authCmp(a *Auth) Auth {
	if a == nil {
		a = &Auth{}
	}
	x := *a
	if x.SessionDuration != "" {
		if d, err := time.ParseDuration(x.SessionDuration); err == nil {
			x.SessionDuration = d.String()
		}
	}
	x.DisabledMethods = sorted(x.DisabledMethods)
	if x.SMTP != nil {
		s := *x.SMTP
		s.PasswordEnv = ""
		x.SMTP = &s
	}
	x.OAuthProviders = nil
	for _, o := range a.OAuthProviders {
		o.ClientSecretEnv = ""
		o.Scopes = sorted(o.Scopes)
		x.OAuthProviders = append(x.OAuthProviders, o)
	}
	slices.SortFunc(x.OAuthProviders, func(p, q OAuthProvider) int { return strings.Compare(p.ID, q.ID) })
	return x
}

func (pl *planner) auth(want, have *File) {
	fields := differs(authCmp(want.Auth), authCmp(have.Auth))
	if !slices.Equal(sorted(want.Platforms), sorted(have.Platforms)) {
		fields = append(fields, "platforms")
	}
	wa, ha := want.Auth, have.Auth
	if wa == nil {
		wa = &Auth{}
	}
	if ha == nil {
		ha = &Auth{}
	}
	// A secret the file names and the project lacks is a change too; one
	// the project has is kept (the API never returns it to compare).
	var secrets []string
	destructive := false
	if wa.SMTP != nil && wa.SMTP.PasswordEnv != "" && (ha.SMTP == nil || ha.SMTP.PasswordEnv == "") {
		secrets = append(secrets, "smtp password")
		if pl.opt.Getenv(wa.SMTP.PasswordEnv) == "" {
			pl.problem("auth.smtp.passwordEnv: %s is not set in the environment, and the project has no SMTP password yet", wa.SMTP.PasswordEnv)
		}
	}
	if ha.SMTP != nil && ha.SMTP.PasswordEnv != "" && wa.SMTP == nil {
		destructive = true // the stored password goes with the settings
	}
	for i, o := range wa.OAuthProviders {
		var h *OAuthProvider
		for j := range ha.OAuthProviders {
			if ha.OAuthProviders[j].ID == o.ID {
				h = &ha.OAuthProviders[j]
			}
		}
		if o.ClientSecretEnv != "" && (h == nil || h.ClientSecretEnv == "") {
			secrets = append(secrets, "oauth "+o.ID+" client secret")
			if pl.opt.Getenv(o.ClientSecretEnv) == "" {
				pl.problem("auth.oauthProviders[%d].clientSecretEnv: %s is not set in the environment, and the project has no secret for %s yet", i, o.ClientSecretEnv, o.ID)
			}
		}
	}
	for _, h := range ha.OAuthProviders {
		if h.ClientSecretEnv != "" && !slices.ContainsFunc(wa.OAuthProviders, func(o OAuthProvider) bool { return o.ID == h.ID }) {
			destructive = true
		}
	}
	if len(fields) == 0 && len(secrets) == 0 {
		return
	}
	detail := strings.Join(append(fields, secrets...), ", ")
	// Browsers on a removed origin lose access at once: as destructive as
	// a stored secret that goes.
	var lost []string
	for _, o := range have.Platforms {
		if !slices.Contains(want.Platforms, o) {
			lost = append(lost, o)
		}
	}
	if len(lost) > 0 {
		destructive = true
		detail += "; removes platforms " + strings.Join(lost, ", ")
	}
	getenv := pl.opt.Getenv
	c := pl.c
	pl.add(Change{Op: OpUpdate, Kind: "auth", ID: "settings", Detail: detail, Destructive: destructive, phase: phaseProject,
		do: func(ctx context.Context, _ io.Writer) error {
			cur, err := c.users.GetAuthSettings(ctx, getAuthReq(c))
			if err != nil {
				return err
			}
			_, err = c.users.UpdateAuthSettings(ctx, updateAuthReq(c, authProto(want.Auth, want.Platforms, cur.GetSettings().GetJwtKeyGeneration(), getenv)))
			return err
		}})
}

func (pl *planner) teams(want, have []Team) {
	w, h := byID(want, func(t Team) string { return t.ID }), byID(have, func(t Team) string { return t.ID })
	c := pl.c
	for _, t := range want {
		old, ok := h[t.ID]
		if !ok {
			pl.add(Change{Op: OpCreate, Kind: "team", ID: t.ID, phase: phaseProject, do: func(ctx context.Context, _ io.Writer) error {
				return c.createTeam(ctx, t)
			}})
			continue
		}
		if d := differs(t, old); len(d) > 0 {
			pl.add(Change{Op: OpUpdate, Kind: "team", ID: t.ID, Detail: strings.Join(d, ", "), phase: phaseProject, do: func(ctx context.Context, _ io.Writer) error {
				return c.updateTeam(ctx, t, old)
			}})
		}
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "team", ID: id, Detail: "its memberships go with it", Destructive: true, phase: phaseDeleteParents,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteTeam(ctx, id) }})
	}
}

func databaseCmp(d Database) any {
	return struct {
		Name    string `json:"name"`
		Enabled *bool  `json:"enabled,omitempty"`
	}{d.Name, sameEnabled(d.Enabled)}
}

func collectionCmp(c Collection) any {
	return struct {
		Name             string   `json:"name"`
		Permissions      []string `json:"permissions,omitempty"`
		DocumentSecurity bool     `json:"documentSecurity,omitempty"`
		Enabled          *bool    `json:"enabled,omitempty"`
	}{c.Name, sorted(c.Permissions), c.DocumentSecurity, sameEnabled(c.Enabled)}
}

func (pl *planner) databases(want, have []Database) {
	w, h := byID(want, func(d Database) string { return d.ID }), byID(have, func(d Database) string { return d.ID })
	c := pl.c
	for _, d := range want {
		old, ok := h[d.ID]
		if !ok {
			pl.add(Change{Op: OpCreate, Kind: "database", ID: d.ID, phase: phaseDatabase, do: func(ctx context.Context, _ io.Writer) error {
				return c.createDatabase(ctx, d)
			}})
		} else if f := differs(databaseCmp(d), databaseCmp(old)); len(f) > 0 {
			pl.add(Change{Op: OpUpdate, Kind: "database", ID: d.ID, Detail: strings.Join(f, ", "), phase: phaseDatabase,
				do: func(ctx context.Context, _ io.Writer) error { return c.updateDatabase(ctx, d) }})
		}
		pl.collections(d.ID, d.Collections, old.Collections)
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "database", ID: id, Detail: "with its collections and documents", Destructive: true, phase: phaseDeleteParents,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteDatabase(ctx, id) }})
	}
}

func (pl *planner) collections(db string, want, have []Collection) {
	w, h := byID(want, func(c Collection) string { return c.ID }), byID(have, func(c Collection) string { return c.ID })
	c := pl.c
	for _, col := range want {
		path := db + "/" + col.ID
		old, ok := h[col.ID]
		if !ok {
			pl.add(Change{Op: OpCreate, Kind: "collection", ID: path, phase: phaseCollection, do: func(ctx context.Context, _ io.Writer) error {
				return c.createCollection(ctx, db, col)
			}})
		} else if f := differs(collectionCmp(col), collectionCmp(old)); len(f) > 0 {
			pl.add(Change{Op: OpUpdate, Kind: "collection", ID: path, Detail: strings.Join(f, ", "), phase: phaseCollection,
				do: func(ctx context.Context, _ io.Writer) error { return c.updateCollection(ctx, db, col) }})
		}
		pl.schema(db, col, old)
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "collection", ID: db + "/" + id, Detail: "with its documents", Destructive: true, phase: phaseDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteCollection(ctx, db, id) }})
	}
}

// schema plans a collection's attributes and indexes. The API changes
// neither in place: a changed attribute is deleted (its values with it)
// and created again, and so is a changed index. Deleting an attribute
// drops the indexes over it, so those are created again too.
func (pl *planner) schema(db string, want, have Collection) {
	c := pl.c
	path := db + "/" + want.ID
	ha := byID(have.Attributes, func(a Attribute) string { return a.Key })
	wa := byID(want.Attributes, func(a Attribute) string { return a.Key })
	gone := map[string]bool{}
	created := false
	for _, a := range want.Attributes {
		old, ok := ha[a.Key]
		switch {
		case !ok:
			created = true
			pl.add(Change{Op: OpCreate, Kind: "attribute", ID: path + "/" + a.Key, Detail: a.Type, phase: phaseAttributeCreate,
				do: func(ctx context.Context, _ io.Writer) error { return c.createAttribute(ctx, db, want.ID, a) }})
		case len(differs(attributeCmp(a), attributeCmp(old))) > 0:
			created = true
			gone[a.Key] = true
			detail := strings.Join(differs(attributeCmp(a), attributeCmp(old)), ", ") + "; every document loses its value"
			if over := indexesOver(have.Indexes, a.Key); len(over) > 0 {
				detail += "; indexes over it are built again: " + strings.Join(over, ", ")
			}
			pl.add(Change{Op: OpReplace, Kind: "attribute", ID: path + "/" + a.Key, Detail: detail,
				Destructive: true, phase: phaseAttributeCreate, do: func(ctx context.Context, _ io.Writer) error {
					if err := c.deleteAttribute(ctx, db, want.ID, a.Key); err != nil {
						return err
					}
					if err := c.waitAttributeGone(ctx, db, want.ID, a.Key); err != nil {
						return err
					}
					return c.createAttribute(ctx, db, want.ID, a)
				}})
		}
	}
	for _, key := range removed(wa, ha) {
		gone[key] = true
		detail := "every document loses its value"
		if over := indexesOver(have.Indexes, key); len(over) > 0 {
			detail += "; indexes over it go too: " + strings.Join(over, ", ")
		}
		pl.add(Change{Op: OpDelete, Kind: "attribute", ID: path + "/" + key, Detail: detail, Destructive: true, phase: phaseAttributeDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteAttribute(ctx, db, want.ID, key) }})
	}
	if created {
		pl.wait(phaseAttributeCreate, func(ctx context.Context) error { return c.waitSchema(ctx, db, want.ID) })
	}
	hi := map[string]Index{}
	for _, ix := range have.Indexes {
		if !slices.ContainsFunc(ix.Attributes, func(k string) bool { return gone[k] }) {
			hi[ix.Key] = ix
		}
	}
	wi := byID(want.Indexes, func(ix Index) string { return ix.Key })
	indexed := false
	for _, ix := range want.Indexes {
		old, ok := hi[ix.Key]
		switch {
		case !ok:
			indexed = true
			pl.add(Change{Op: OpCreate, Kind: "index", ID: path + "/" + ix.Key, Detail: ix.Type + " (" + strings.Join(ix.Attributes, ", ") + ")", phase: phaseIndexCreate,
				do: func(ctx context.Context, _ io.Writer) error { return c.createIndex(ctx, db, want.ID, ix) }})
		case len(differs(indexCmp(ix), indexCmp(old))) > 0:
			indexed = true
			pl.add(Change{Op: OpReplace, Kind: "index", ID: path + "/" + ix.Key, Detail: strings.Join(differs(indexCmp(ix), indexCmp(old)), ", "), phase: phaseIndexCreate,
				do: func(ctx context.Context, _ io.Writer) error {
					if err := c.deleteIndex(ctx, db, want.ID, ix.Key); err != nil {
						return err
					}
					return c.createIndex(ctx, db, want.ID, ix)
				}})
		}
	}
	for _, key := range removed(wi, hi) {
		pl.add(Change{Op: OpDelete, Kind: "index", ID: path + "/" + key, phase: phaseIndexDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteIndex(ctx, db, want.ID, key) }})
	}
	if indexed {
		pl.wait(phaseIndexCreate, func(ctx context.Context) error { return c.waitSchema(ctx, db, want.ID) })
	}
}

// attributeCmp is an attribute as compared: made canonical by the
// server's own rules (a datetime default in its stored format, widest
// bounds filled in), then written in the file's form, which leaves the
// widest bounds out.
func attributeCmp(a Attribute) Attribute {
	d := domainAttribute(a)
	if err := database.ValidateAttribute(&database.Schema{}, &d); err != nil {
		return a
	}
	out := Attribute{Key: d.Key, Type: string(d.Type), Required: d.Required, Array: d.Array, Size: int64(d.Size), Elements: d.Elements}
	bound := func(v, widest float64) *float64 {
		if v == widest {
			return nil
		}
		return &v
	}
	switch d.Type {
	case database.TypeInteger:
		out.Min, out.Max = bound(float64(d.IntMin), database.MinSafeInteger), bound(float64(d.IntMax), database.MaxSafeInteger)
	case database.TypeFloat:
		out.Min, out.Max = bound(d.FloatMin, -math.MaxFloat64), bound(d.FloatMax, math.MaxFloat64)
	}
	if d.Default != nil {
		out.Default = database.ToJSON(d.Default)
	}
	return out
}

func indexCmp(ix Index) Index { return indexFrom(indexProto(ix)) }

// indexesOver lists the keys of the indexes over attribute key.
func indexesOver(ixs []Index, key string) []string {
	var out []string
	for _, ix := range ixs {
		if slices.Contains(ix.Attributes, key) {
			out = append(out, ix.Key)
		}
	}
	return out
}

func bucketCmp(b Bucket) Bucket {
	b.Permissions, b.AllowedFileExtensions, b.Enabled = sorted(b.Permissions), sorted(b.AllowedFileExtensions), sameEnabled(b.Enabled)
	if b.Compression == "none" {
		b.Compression = ""
	}
	return b
}

func (pl *planner) buckets(want, have []Bucket) {
	w, h := byID(want, func(b Bucket) string { return b.ID }), byID(have, func(b Bucket) string { return b.ID })
	c := pl.c
	for _, b := range want {
		old, ok := h[b.ID]
		if !ok {
			pl.add(Change{Op: OpCreate, Kind: "bucket", ID: b.ID, phase: phaseResources, do: func(ctx context.Context, _ io.Writer) error { return c.createBucket(ctx, b) }})
		} else if f := differs(bucketCmp(b), bucketCmp(old)); len(f) > 0 {
			pl.add(Change{Op: OpUpdate, Kind: "bucket", ID: b.ID, Detail: strings.Join(f, ", "), phase: phaseResources,
				do: func(ctx context.Context, _ io.Writer) error { return c.updateBucket(ctx, b) }})
		}
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "bucket", ID: id, Detail: "with its files", Destructive: true, phase: phaseDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteBucket(ctx, id) }})
	}
}

// functionCmp is a function's settings as compared: a secret variable's
// value is never returned, so only its being secret counts.
func functionCmp(f Function) Function {
	f.Code, f.deployedSHA = nil, ""
	f.Execute, f.Scopes, f.Events, f.Enabled = sorted(f.Execute), sorted(f.Scopes), sorted(f.Events), sameEnabled(f.Enabled)
	if f.Timeout == 0 {
		f.Timeout = int32(function.DefaultTimeout / time.Second)
	}
	var vs []Variable
	for _, v := range f.Variables {
		if v.SecretEnv != "" {
			v.SecretEnv = "(secret)"
		}
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b Variable) int { return strings.Compare(a.Key, b.Key) })
	f.Variables = vs
	return f
}

func (pl *planner) functions(want, have []Function) error {
	w, h := byID(want, func(f Function) string { return f.ID }), byID(have, func(f Function) string { return f.ID })
	c := pl.c
	getenv := pl.opt.Getenv
	for i, fn := range want {
		old, ok := h[fn.ID]
		for j, v := range fn.Variables {
			isNew := !ok || !slices.ContainsFunc(old.Variables, func(o Variable) bool { return o.Key == v.Key && o.SecretEnv != "" })
			if v.SecretEnv != "" && isNew && getenv(v.SecretEnv) == "" {
				pl.problem("functions[%d].variables[%d].secretEnv: %s is not set in the environment, and function %s has no value for %s yet", i, j, v.SecretEnv, fn.ID, v.Key)
			}
		}
		switch {
		case !ok:
			pl.add(Change{Op: OpCreate, Kind: "function", ID: fn.ID, Detail: fn.Runtime, phase: phaseResources,
				do: func(ctx context.Context, _ io.Writer) error { return c.createFunction(ctx, fn, getenv) }})
		case fn.Runtime != old.Runtime:
			// The API cannot change a function's runtime in place.
			pl.add(Change{Op: OpReplace, Kind: "function", ID: fn.ID, Detail: "runtime " + old.Runtime + " → " + fn.Runtime + "; its deployments and executions go",
				Destructive: true, phase: phaseResources, do: func(ctx context.Context, _ io.Writer) error {
					if err := c.deleteFunction(ctx, fn.ID); err != nil {
						return err
					}
					return c.createFunction(ctx, fn, getenv)
				}})
			old.deployedSHA = ""
		case len(differs(functionCmp(fn), functionCmp(old))) > 0:
			f := differs(functionCmp(fn), functionCmp(old))
			pl.add(Change{Op: OpUpdate, Kind: "function", ID: fn.ID, Detail: strings.Join(f, ", "), phase: phaseResources,
				do: func(ctx context.Context, _ io.Writer) error { return c.updateFunction(ctx, fn, getenv) }})
		}
		if fn.Code == nil {
			continue
		}
		code, err := pl.opt.Build(fn.Runtime, resolve(pl.opt.BaseDir, fn.Code.Path), fn.Code.Entry)
		if err != nil {
			return fmt.Errorf("functions[%d].code: %w", i, err)
		}
		if sha := sha256Hex(code); sha != old.deployedSHA {
			pl.add(Change{Op: OpUpdate, Kind: "code", ID: fn.ID, Detail: fmt.Sprintf("deploy %s (%d bytes, sha256 %.12s)", fn.Code.Path, len(code), sha), phase: phaseResources,
				do: func(ctx context.Context, _ io.Writer) error { return c.deployFunction(ctx, fn.ID, code) }})
		}
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "function", ID: id, Detail: "with its deployments and executions", Destructive: true, phase: phaseDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteFunction(ctx, id) }})
	}
	return nil
}

func siteCmp(s Site) any {
	st := siteSettingsProto(s.Settings)
	return struct {
		Name     string        `json:"name"`
		Settings *SiteSettings `json:"settings,omitempty"`
	}{s.Name, siteSettingsFrom(st)}
}

func (pl *planner) sites(want, have []Site) {
	w, h := byID(want, func(s Site) string { return s.ID }), byID(have, func(s Site) string { return s.ID })
	c := pl.c
	for _, s := range want {
		old, ok := h[s.ID]
		if !ok {
			pl.add(Change{Op: OpCreate, Kind: "site", ID: s.ID, phase: phaseResources, do: func(ctx context.Context, _ io.Writer) error { return c.createSite(ctx, s) }})
		} else if f := differs(siteCmp(s), siteCmp(old)); len(f) > 0 {
			pl.add(Change{Op: OpUpdate, Kind: "site", ID: s.ID, Detail: strings.Join(f, ", "), phase: phaseResources,
				do: func(ctx context.Context, _ io.Writer) error { return c.updateSite(ctx, s) }})
		}
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "site", ID: id, Detail: "with its deployments", Destructive: true, phase: phaseDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteSite(ctx, id) }})
	}
}

func webhookCmp(w Webhook) Webhook {
	w.Events, w.Enabled = sorted(w.Events), sameEnabled(w.Enabled)
	return w
}

func (pl *planner) webhooks(want, have []Webhook) {
	w, h := byID(want, func(w Webhook) string { return w.ID }), byID(have, func(w Webhook) string { return w.ID })
	c := pl.c
	for _, wh := range want {
		old, ok := h[wh.ID]
		if !ok {
			pl.add(Change{Op: OpCreate, Kind: "webhook", ID: wh.ID, phase: phaseResources, do: func(ctx context.Context, log io.Writer) error {
				return c.createWebhook(ctx, wh, log)
			}})
		} else if f := differs(webhookCmp(wh), webhookCmp(old)); len(f) > 0 {
			pl.add(Change{Op: OpUpdate, Kind: "webhook", ID: wh.ID, Detail: strings.Join(f, ", "), phase: phaseResources,
				do: func(ctx context.Context, _ io.Writer) error { return c.updateWebhook(ctx, wh) }})
		}
	}
	for _, id := range removed(w, h) {
		pl.add(Change{Op: OpDelete, Kind: "webhook", ID: id, Detail: "with its delivery history", Destructive: true, phase: phaseDelete,
			do: func(ctx context.Context, _ io.Writer) error { return c.deleteWebhook(ctx, id) }})
	}
}
