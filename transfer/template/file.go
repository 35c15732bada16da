package template

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Version is the file format's version; a file names it so that a later
// format can tell an old file apart.
const Version = 1

// File is a project file (cairn.json). Lists are in the order Pull writes
// them (by id; attributes and indexes in the server's order); Diff matches
// entries by id, so order carries no meaning.
type File struct {
	Version int `json:"version"`
	// Platforms are the origins whose pages may call the project's API from
	// a browser (the auth settings' allowed origins).
	Platforms []string   `json:"platforms,omitempty"`
	Auth      *Auth      `json:"auth,omitempty"`
	Teams     []Team     `json:"teams,omitempty"`
	Databases []Database `json:"databases,omitempty"`
	Buckets   []Bucket   `json:"buckets,omitempty"`
	Functions []Function `json:"functions,omitempty"`
	Sites     []Site     `json:"sites,omitempty"`
	Webhooks  []Webhook  `json:"webhooks,omitempty"`
}

// Auth is the project's authentication settings; absent means the defaults.
type Auth struct {
	// A Go duration ("720h"); empty: the server's default (a year).
	SessionDuration         string          `json:"sessionDuration,omitempty"`
	MaxSessions             int32           `json:"maxSessions,omitempty"`
	PasswordMinLength       int32           `json:"passwordMinLength,omitempty"`
	PasswordCheckCommon     bool            `json:"passwordCheckCommon,omitempty"`
	DisabledMethods         []string        `json:"disabledMethods,omitempty"`
	DisableLocalhostOrigins bool            `json:"disableLocalhostOrigins,omitempty"`
	SMTP                    *SMTP           `json:"smtp,omitempty"`
	OAuthProviders          []OAuthProvider `json:"oauthProviders,omitempty"`
}

// SMTP is the project's mail server; the password is read from the
// environment variable PasswordEnv.
type SMTP struct {
	Host        string `json:"host"`
	Port        int32  `json:"port"`
	Username    string `json:"username,omitempty"`
	PasswordEnv string `json:"passwordEnv,omitempty"`
	SenderEmail string `json:"senderEmail"`
	SenderName  string `json:"senderName,omitempty"`
	Security    string `json:"security,omitempty"`
}

// OAuthProvider is a sign-in provider; its client secret is read from the
// environment variable ClientSecretEnv.
type OAuthProvider struct {
	ID              string   `json:"id"`
	Kind            string   `json:"kind"`
	ClientID        string   `json:"clientId"`
	ClientSecretEnv string   `json:"clientSecretEnv,omitempty"`
	IssuerURL       string   `json:"issuerUrl,omitempty"`
	Scopes          []string `json:"scopes,omitempty"`
	Disabled        bool     `json:"disabled,omitempty"`
}

// Team is a team without its members (members are users: data, not shape).
type Team struct {
	ID    string         `json:"id"`
	Name  string         `json:"name"`
	Prefs map[string]any `json:"prefs,omitempty"`
}

// Database holds collections.
type Database struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Enabled     *bool        `json:"enabled,omitempty"`
	Collections []Collection `json:"collections,omitempty"`
}

// Collection is a collection's settings and schema.
type Collection struct {
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	Permissions      []string    `json:"permissions,omitempty"`
	DocumentSecurity bool        `json:"documentSecurity,omitempty"`
	Enabled          *bool       `json:"enabled,omitempty"`
	Attributes       []Attribute `json:"attributes,omitempty"`
	Indexes          []Index     `json:"indexes,omitempty"`
}

// Attribute is one field of a collection's schema. Min and Max bound
// integers and floats; absent means the widest range.
type Attribute struct {
	Key      string   `json:"key"`
	Type     string   `json:"type"`
	Required bool     `json:"required,omitempty"`
	Array    bool     `json:"array,omitempty"`
	Size     int64    `json:"size,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Elements []string `json:"elements,omitempty"`
	Default  any      `json:"default,omitempty"`
}

// Index is a secondary index; Desc, when present, has one entry per
// attribute.
type Index struct {
	Key        string   `json:"key"`
	Type       string   `json:"type"`
	Attributes []string `json:"attributes"`
	Desc       []bool   `json:"desc,omitempty"`
}

// Bucket is a storage bucket's settings.
type Bucket struct {
	ID                    string   `json:"id"`
	Name                  string   `json:"name"`
	Permissions           []string `json:"permissions,omitempty"`
	FileSecurity          bool     `json:"fileSecurity,omitempty"`
	Enabled               *bool    `json:"enabled,omitempty"`
	MaximumFileSize       int64    `json:"maximumFileSize,omitempty"`
	AllowedFileExtensions []string `json:"allowedFileExtensions,omitempty"`
	// none (default), gzip or zstd.
	Compression string `json:"compression,omitempty"`
	Encryption  bool   `json:"encryption,omitempty"`
}

// Function is a function's settings and, optionally, where its code is.
type Function struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	// Seconds; 0: the server's default.
	Timeout        int32      `json:"timeout,omitempty"`
	Execute        []string   `json:"execute,omitempty"`
	Scopes         []string   `json:"scopes,omitempty"`
	Events         []string   `json:"events,omitempty"`
	Schedule       string     `json:"schedule,omitempty"`
	Enabled        *bool      `json:"enabled,omitempty"`
	MaxConcurrency int32      `json:"maxConcurrency,omitempty"`
	Variables      []Variable `json:"variables,omitempty"`
	// Absent: the deployed code is left as it is.
	Code *Code `json:"code,omitempty"`

	// deployedSHA is the active deployment's SHA-256 (a pulled File).
	deployedSHA string
}

// Variable is a function variable: a plain Value, or a secret read from
// the environment variable SecretEnv.
type Variable struct {
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	SecretEnv string `json:"secretEnv,omitempty"`
}

// Code is where a function's code is: for js a directory bundled from its
// entry (default index.ts, else index.js), for wasm a .wasm file or a
// directory holding main.wasm. Path is relative to the project file.
type Code struct {
	Path  string `json:"path"`
	Entry string `json:"entry,omitempty"`
}

// Site is a site's settings; deployments are not part of a project file.
type Site struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Settings *SiteSettings `json:"settings,omitempty"`
}

// SiteSettings are how a site serves its deployments.
type SiteSettings struct {
	SPAFallback  bool   `json:"spaFallback,omitempty"`
	NotFoundPage string `json:"notFoundPage,omitempty"`
	// add, remove, or empty for both forms.
	TrailingSlash string       `json:"trailingSlash,omitempty"`
	Headers       []HeaderRule `json:"headers,omitempty"`
	Redirects     []Redirect   `json:"redirects,omitempty"`
	Domains       []string     `json:"domains,omitempty"`
}

// HeaderRule adds a response header to the paths matching Pattern.
type HeaderRule struct {
	Pattern string `json:"pattern"`
	Name    string `json:"name"`
	Value   string `json:"value"`
}

// Redirect sends requests for a path elsewhere.
type Redirect struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Status int32  `json:"status,omitempty"`
}

// Webhook is a webhook; its signing secret is made by the server and shown
// once when apply creates it.
type Webhook struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Enabled *bool    `json:"enabled,omitempty"`
}

// Encode writes f as indented JSON with a final newline: the bytes Pull's
// callers store, so that two pulls of equal projects are equal files.
func Encode(f *File) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode project file: %w", err)
	}
	return b.Bytes(), nil
}

// enabled reads an optional enabled flag, whose default is true.
func enabled(b *bool) bool { return b == nil || *b }

// enabledFlag is the file form of an enabled flag: absent when true.
func enabledFlag(b bool) *bool {
	if b {
		return nil
	}
	return &b
}
