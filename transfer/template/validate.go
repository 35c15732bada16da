package template

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/database"
)

// The values the file's enumerations take.
var (
	attributeTypes  = []string{"string", "integer", "float", "boolean", "datetime", "email", "url", "ip", "enum"}
	indexTypes      = []string{"key", "unique", "fulltext"}
	compressions    = []string{"none", "gzip", "zstd"}
	runtimes        = []string{"js", "wasm"}
	trailingSlashes = []string{"add", "remove"}
	signInMethods   = []string{"email-password", "anonymous", "magic-url", "email-otp", "oauth2"}
	oauthKinds      = []string{"oidc", "github", "google"}
	smtpSecurities  = []string{"starttls", "tls", "none"}
	redirectCodes   = []int32{301, 302, 307, 308}
	systemAttrs     = []string{"$id", "$createdAt", "$updatedAt", "$sequence"}

	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	siteID       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,35}$`)
	attributeKey = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_-]{0,63}$`)
	variableKey  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	providerID   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,35}$`)
	extension    = regexp.MustCompile(`^[a-zA-Z0-9]{1,16}$`)
)

// Validate checks what the server would refuse, or what would make a plan
// meaningless (two entries with one id), before any call is made. Returns
// a *FieldError.
func (f *File) Validate() error {
	if f.Version != Version {
		return fieldErr("version", "want %d (this file format's version), got %d", Version, f.Version)
	}
	for i, o := range f.Platforms {
		p := fmt.Sprintf("platforms[%d]", i)
		if err := checkOrigin(p, o); err != nil {
			return err
		}
		if slices.Contains(f.Platforms[:i], o) {
			return fieldErr(p, "%q is listed twice", o)
		}
	}
	if f.Auth != nil {
		if err := f.Auth.validate("auth"); err != nil {
			return err
		}
	}
	ids := seen{}
	for i, t := range f.Teams {
		p := fmt.Sprintf("teams[%d]", i)
		if err := ids.resource(p, "team", t.ID, t.Name); err != nil {
			return err
		}
	}
	for i, d := range f.Databases {
		p := fmt.Sprintf("databases[%d]", i)
		if err := ids.resource(p, "database", d.ID, d.Name); err != nil {
			return err
		}
		for j, c := range d.Collections {
			if err := c.validate(fmt.Sprintf("%s.collections[%d]", p, j), d.ID, ids); err != nil {
				return err
			}
		}
	}
	for i, b := range f.Buckets {
		p := fmt.Sprintf("buckets[%d]", i)
		if err := ids.resource(p, "bucket", b.ID, b.Name); err != nil {
			return err
		}
		if b.Compression != "" && !slices.Contains(compressions, b.Compression) {
			return fieldErr(p+".compression", "%q is not one of %s", b.Compression, strings.Join(compressions, ", "))
		}
		if b.MaximumFileSize < 0 {
			return fieldErr(p+".maximumFileSize", "must not be negative")
		}
		for j, e := range b.AllowedFileExtensions {
			if !extension.MatchString(e) {
				return fieldErr(fmt.Sprintf("%s.allowedFileExtensions[%d]", p, j), "%q is not an extension (letters and digits, no dot)", e)
			}
		}
	}
	for i, fn := range f.Functions {
		if err := fn.validate(fmt.Sprintf("functions[%d]", i), ids); err != nil {
			return err
		}
	}
	for i, s := range f.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		if !siteID.MatchString(s.ID) {
			return fieldErr(p+".id", "%q is not a site id (lower-case letters, digits and -, at most 36; it becomes a host name)", s.ID)
		}
		if err := ids.resource(p, "site", s.ID, s.Name); err != nil {
			return err
		}
		if st := s.Settings; st != nil {
			if st.TrailingSlash != "" && !slices.Contains(trailingSlashes, st.TrailingSlash) {
				return fieldErr(p+".settings.trailingSlash", "%q is not one of add, remove (or absent)", st.TrailingSlash)
			}
			for j, r := range st.Redirects {
				if r.Status != 0 && !slices.Contains(redirectCodes, r.Status) {
					return fieldErr(fmt.Sprintf("%s.settings.redirects[%d].status", p, j), "%d is not one of 301, 302, 307, 308", r.Status)
				}
			}
		}
	}
	for i, w := range f.Webhooks {
		p := fmt.Sprintf("webhooks[%d]", i)
		if err := ids.resource(p, "webhook", w.ID, w.Name); err != nil {
			return err
		}
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr(p+".url", "%q is not an http(s) URL", w.URL)
		}
		if len(w.Events) == 0 {
			return fieldErr(p+".events", "at least one event is required")
		}
	}
	return nil
}

// seen finds an id used twice for one kind of resource.
type seen map[string]string

func (s seen) resource(path, kind, key, name string) error {
	_, id, _ := strings.Cut(key, "/")
	if id == "" {
		id = key
	}
	if !domain.ValidResourceID(id) {
		return fieldErr(path+".id", "%q is not an id (letters, digits, _ and -, at most 36, not starting with _ or -)", id)
	}
	if name == "" {
		return fieldErr(path+".name", "required")
	}
	if len(name) > 128 {
		return fieldErr(path+".name", "at most 128 characters")
	}
	k := kind + " " + key
	if prev, ok := s[k]; ok {
		return fieldErr(path+".id", "%s %q is already defined at %s", kind, key, prev)
	}
	s[k] = path
	return nil
}

func checkOrigin(path, o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fieldErr(path, "%q is not an origin (scheme://host[:port])", o)
	}
	return nil
}

func checkEnv(path, name string) error {
	if name != "" && !envName.MatchString(name) {
		return fieldErr(path, "%q is not an environment variable name", name)
	}
	return nil
}

func (a *Auth) validate(p string) error {
	if a.SessionDuration != "" {
		d, err := time.ParseDuration(a.SessionDuration)
		if err != nil || d < time.Minute || d > 10*365*24*time.Hour {
			return fieldErr(p+".sessionDuration", "%q is not a duration between 1m and 87600h (for example 720h)", a.SessionDuration)
		}
	}
	if a.MaxSessions < 0 || a.MaxSessions > 100 {
		return fieldErr(p+".maxSessions", "must be between 0 (the default, 10) and 100")
	}
	if a.PasswordMinLength < 0 || a.PasswordMinLength > 64 {
		return fieldErr(p+".passwordMinLength", "must be between 0 (the default, 8) and 64")
	}
	for i, m := range a.DisabledMethods {
		if !slices.Contains(signInMethods, m) {
			return fieldErr(fmt.Sprintf("%s.disabledMethods[%d]", p, i), "%q is not one of %s", m, strings.Join(signInMethods, ", "))
		}
	}
	if s := a.SMTP; s != nil {
		switch {
		case s.Host == "":
			return fieldErr(p+".smtp.host", "required")
		case s.Port < 1 || s.Port > 65535:
			return fieldErr(p+".smtp.port", "must be between 1 and 65535")
		case !strings.Contains(s.SenderEmail, "@"):
			return fieldErr(p+".smtp.senderEmail", "%q is not an email address", s.SenderEmail)
		case s.Security != "" && !slices.Contains(smtpSecurities, s.Security):
			return fieldErr(p+".smtp.security", "%q is not one of %s", s.Security, strings.Join(smtpSecurities, ", "))
		}
		if err := checkEnv(p+".smtp.passwordEnv", s.PasswordEnv); err != nil {
			return err
		}
	}
	for i, o := range a.OAuthProviders {
		q := fmt.Sprintf("%s.oauthProviders[%d]", p, i)
		switch {
		case !providerID.MatchString(o.ID):
			return fieldErr(q+".id", "%q is not a provider id (lower-case letters, digits and -)", o.ID)
		case slices.ContainsFunc(a.OAuthProviders[:i], func(x OAuthProvider) bool { return x.ID == o.ID }):
			return fieldErr(q+".id", "provider %q is listed twice", o.ID)
		case !slices.Contains(oauthKinds, o.Kind):
			return fieldErr(q+".kind", "%q is not one of %s", o.Kind, strings.Join(oauthKinds, ", "))
		case o.ClientID == "":
			return fieldErr(q+".clientId", "required")
		case o.Kind == "oidc" && o.IssuerURL == "":
			return fieldErr(q+".issuerUrl", "required for kind oidc")
		}
		if err := checkEnv(q+".clientSecretEnv", o.ClientSecretEnv); err != nil {
			return err
		}
	}
	return nil
}

func (c *Collection) validate(p, db string, ids seen) error {
	if err := ids.resource(p, "collection", db+"/"+c.ID, c.Name); err != nil {
		return err
	}
	keys := map[string]bool{}
	for i, a := range c.Attributes {
		q := fmt.Sprintf("%s.attributes[%d]", p, i)
		if !attributeKey.MatchString(a.Key) {
			return fieldErr(q+".key", "%q is not an attribute key (letters, digits, _ and -, at most 64)", a.Key)
		}
		if keys[a.Key] {
			return fieldErr(q+".key", "attribute %q is defined twice", a.Key)
		}
		keys[a.Key] = true
		if err := a.validate(q); err != nil {
			return err
		}
	}
	ixKeys := map[string]bool{}
	for i, ix := range c.Indexes {
		q := fmt.Sprintf("%s.indexes[%d]", p, i)
		if !attributeKey.MatchString(ix.Key) {
			return fieldErr(q+".key", "%q is not an index key (letters, digits, _ and -, at most 64)", ix.Key)
		}
		if ixKeys[ix.Key] {
			return fieldErr(q+".key", "index %q is defined twice", ix.Key)
		}
		ixKeys[ix.Key] = true
		if !slices.Contains(indexTypes, ix.Type) {
			return fieldErr(q+".type", "%q is not one of %s", ix.Type, strings.Join(indexTypes, ", "))
		}
		if len(ix.Attributes) == 0 {
			return fieldErr(q+".attributes", "at least one attribute is required")
		}
		for j, k := range ix.Attributes {
			if !keys[k] && !slices.Contains(systemAttrs, k) {
				return fieldErr(fmt.Sprintf("%s.attributes[%d]", q, j), "%q is not an attribute of this collection", k)
			}
		}
		if len(ix.Desc) > 0 && len(ix.Desc) != len(ix.Attributes) {
			return fieldErr(q+".desc", "has %d entries for %d attributes", len(ix.Desc), len(ix.Attributes))
		}
	}
	return nil
}

func (a *Attribute) validate(q string) error {
	if !slices.Contains(attributeTypes, a.Type) {
		return fieldErr(q+".type", "%q is not one of %s", a.Type, strings.Join(attributeTypes, ", "))
	}
	if a.Type == "string" && a.Size < 1 {
		return fieldErr(q+".size", "a string attribute needs a size (its maximum length in characters)")
	}
	if a.Type != "string" && a.Size != 0 {
		return fieldErr(q+".size", "only string attributes have a size")
	}
	if a.Min != nil || a.Max != nil {
		switch a.Type {
		case "integer":
			for _, b := range []struct {
				name string
				v    *float64
			}{{"min", a.Min}, {"max", a.Max}} {
				if b.v != nil && (*b.v != math.Trunc(*b.v) || math.Abs(*b.v) > 1<<53-1) {
					return fieldErr(q+"."+b.name, "an integer bound must be a whole number within ±(2^53-1)")
				}
			}
		case "float":
		default:
			return fieldErr(q+".min", "only integer and float attributes have bounds")
		}
		if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
			return fieldErr(q+".min", "must not exceed max")
		}
	}
	if a.Type == "enum" && len(a.Elements) == 0 {
		return fieldErr(q+".elements", "an enum attribute needs its allowed values")
	}
	if a.Type != "enum" && len(a.Elements) > 0 {
		return fieldErr(q+".elements", "only enum attributes have elements")
	}
	if a.Required && a.Default != nil {
		return fieldErr(q+".default", "a required attribute cannot have a default")
	}
	// The server's own rules, for what is left: sizes, enum elements, a
	// default of the wrong type. Its field names are the file's.
	d := domainAttribute(*a)
	if err := database.ValidateAttribute(&database.Schema{}, &d); err != nil {
		var de *domain.Error
		if errors.As(err, &de) && de.Field != "" {
			return fieldErr(q+"."+de.Field, "%s", de.Message)
		}
		return fieldErr(q, "%v", err)
	}
	return nil
}

func (fn *Function) validate(p string, ids seen) error {
	if err := ids.resource(p, "function", fn.ID, fn.Name); err != nil {
		return err
	}
	if !slices.Contains(runtimes, fn.Runtime) {
		return fieldErr(p+".runtime", "%q is not one of js, wasm", fn.Runtime)
	}
	if fn.Timeout < 0 {
		return fieldErr(p+".timeout", "must not be negative")
	}
	if fn.MaxConcurrency < 0 || fn.MaxConcurrency > 1000 {
		return fieldErr(p+".maxConcurrency", "must be between 0 and 1000")
	}
	for i, v := range fn.Variables {
		q := fmt.Sprintf("%s.variables[%d]", p, i)
		if !variableKey.MatchString(v.Key) {
			return fieldErr(q+".key", "%q is not a variable name", v.Key)
		}
		if slices.ContainsFunc(fn.Variables[:i], func(x Variable) bool { return x.Key == v.Key }) {
			return fieldErr(q+".key", "variable %q is defined twice", v.Key)
		}
		if v.SecretEnv != "" && v.Value != "" {
			return fieldErr(q, "set value or secretEnv, not both (a secret's value never belongs in the file)")
		}
		if err := checkEnv(q+".secretEnv", v.SecretEnv); err != nil {
			return err
		}
	}
	if fn.Code != nil && fn.Code.Path == "" {
		return fieldErr(p+".code.path", "required (relative to the project file)")
	}
	return nil
}
