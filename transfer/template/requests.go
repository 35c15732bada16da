package template

import (
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/domain/database"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
)

// The file's forms turned into the API's messages.

// domainAttribute is the attribute as the server's rules see it: one bound
// given means the other is the widest, as the API reads a request.
func domainAttribute(a Attribute) database.Attribute {
	out := database.Attribute{Key: a.Key, Type: database.Type(a.Type), Required: a.Required, Array: a.Array, Size: int(a.Size),
		Elements: a.Elements, Default: a.Default}
	if a.Min == nil && a.Max == nil {
		return out
	}
	switch a.Type {
	case "integer":
		out.IntMin, out.IntMax = database.MinSafeInteger, database.MaxSafeInteger
		if a.Min != nil {
			out.IntMin = int64(*a.Min)
		}
		if a.Max != nil {
			out.IntMax = int64(*a.Max)
		}
	case "float":
		out.FloatMin, out.FloatMax = -math.MaxFloat64, math.MaxFloat64
		if a.Min != nil {
			out.FloatMin = *a.Min
		}
		if a.Max != nil {
			out.FloatMax = *a.Max
		}
	}
	return out
}

func attributeProto(a Attribute) (*cairnv1.Attribute, error) {
	out := &cairnv1.Attribute{Key: a.Key, Type: cairnv1.AttributeType(cairnv1.AttributeType_value["ATTRIBUTE_TYPE_"+strings.ToUpper(a.Type)]),
		Required: a.Required, Array: a.Array, Size: a.Size, Elements: a.Elements}
	switch a.Type {
	case "integer":
		if a.Min != nil {
			v := int64(*a.Min)
			out.IntMin = &v
		}
		if a.Max != nil {
			v := int64(*a.Max)
			out.IntMax = &v
		}
	case "float":
		out.FloatMin, out.FloatMax = a.Min, a.Max
	}
	if a.Default != nil {
		v, err := structpb.NewValue(a.Default)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: default: %w", a.Key, err)
		}
		out.Default = v
	}
	return out, nil
}

func indexProto(ix Index) *cairnv1.Index {
	return &cairnv1.Index{Key: ix.Key, Type: cairnv1.IndexType(cairnv1.IndexType_value["INDEX_TYPE_"+strings.ToUpper(ix.Type)]),
		Attributes: ix.Attributes, Desc: ix.Desc}
}

func compressionProto(name string) cairnv1.Compression {
	if name == "" {
		return cairnv1.Compression_COMPRESSION_NONE
	}
	return cairnv1.Compression(cairnv1.Compression_value["COMPRESSION_"+strings.ToUpper(name)])
}

func siteSettingsProto(s *SiteSettings) *eventsv1.SiteSettings {
	out := &eventsv1.SiteSettings{}
	if s == nil {
		return out
	}
	out.SpaFallback, out.NotFoundPage, out.Domains = s.SPAFallback, s.NotFoundPage, s.Domains
	switch s.TrailingSlash {
	case "add":
		out.TrailingSlash = eventsv1.TrailingSlash_TRAILING_SLASH_ADD
	case "remove":
		out.TrailingSlash = eventsv1.TrailingSlash_TRAILING_SLASH_REMOVE
	}
	for _, h := range s.Headers {
		out.Headers = append(out.Headers, &eventsv1.HeaderRule{Pattern: h.Pattern, Name: h.Name, Value: h.Value})
	}
	for _, r := range s.Redirects {
		out.Redirects = append(out.Redirects, &eventsv1.Redirect{From: r.From, To: r.To, Status: r.Status})
	}
	return out
}

func prefsProto(p map[string]any) (*structpb.Struct, error) {
	if p == nil {
		p = map[string]any{}
	}
	s, err := structpb.NewStruct(p)
	if err != nil {
		return nil, fmt.Errorf("prefs: %w", err)
	}
	return s, nil
}

// variablesProto resolves secrets from the environment; an unset one is
// sent empty, which keeps the value the server has.
func variablesProto(vs []Variable, getenv func(string) string) []*cairnv1.FunctionVariable {
	out := []*cairnv1.FunctionVariable{}
	for _, v := range vs {
		if v.SecretEnv != "" {
			out = append(out, &cairnv1.FunctionVariable{Key: v.Key, Value: getenv(v.SecretEnv), Secret: true})
		} else {
			out = append(out, &cairnv1.FunctionVariable{Key: v.Key, Value: v.Value})
		}
	}
	return out
}

// authProto is the whole settings message UpdateAuthSettings replaces;
// jwtGeneration is the project's current one (rotating the signing key is
// not a project file's business). Secrets come from the environment; an
// unset one is sent empty, which keeps the stored secret.
func authProto(a *Auth, platforms []string, jwtGeneration int32, getenv func(string) string) *cairnv1.AuthSettings {
	if a == nil {
		a = &Auth{}
	}
	out := &cairnv1.AuthSettings{MaxSessions: a.MaxSessions, PasswordMinLength: a.PasswordMinLength, PasswordCheckCommon: a.PasswordCheckCommon,
		AllowedOrigins: platforms, DisabledMethods: a.DisabledMethods, JwtKeyGeneration: jwtGeneration, DisableLocalhostOrigins: a.DisableLocalhostOrigins}
	if a.SessionDuration != "" {
		if d, err := time.ParseDuration(a.SessionDuration); err == nil {
			out.SessionDuration = durationpb.New(d)
		}
	}
	if s := a.SMTP; s != nil {
		out.Smtp = &cairnv1.SmtpSettings{Host: s.Host, Port: s.Port, Username: s.Username, SenderEmail: s.SenderEmail, SenderName: s.SenderName, Security: s.Security}
		if s.PasswordEnv != "" {
			out.Smtp.Password = getenv(s.PasswordEnv)
		}
	}
	for _, o := range a.OAuthProviders {
		p := &cairnv1.OAuthProvider{Id: o.ID, Kind: o.Kind, ClientId: o.ClientID, IssuerUrl: o.IssuerURL, Scopes: o.Scopes, Disabled: o.Disabled}
		if o.ClientSecretEnv != "" {
			p.ClientSecret = getenv(o.ClientSecretEnv)
		}
		out.OauthProviders = append(out.OauthProviders, p)
	}
	return out
}
