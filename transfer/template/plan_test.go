package template

import (
	"slices"
	"testing"
)

// Forms that mean the same compare equal, so that a hand-written file does
// not plan a change forever against what the server answers.
func TestCompareForms(t *testing.T) {
	lo, hi, zero := float64(-(1<<53 - 1)), float64(1<<53-1), 0.0
	for _, tc := range []struct {
		name string
		a, b any
		want []string
	}{
		{"widest integer bounds are no bounds", attributeCmp(Attribute{Key: "n", Type: "integer", Min: &lo, Max: &hi}), attributeCmp(Attribute{Key: "n", Type: "integer"}), nil},
		{"one bound", attributeCmp(Attribute{Key: "n", Type: "integer", Min: &zero, Max: &hi}), attributeCmp(Attribute{Key: "n", Type: "integer", Min: &zero}), nil},
		{"a real difference", attributeCmp(Attribute{Key: "n", Type: "integer", Min: &zero}), attributeCmp(Attribute{Key: "n", Type: "integer"}), []string{"min"}},
		{"a datetime default in another layout", attributeCmp(Attribute{Key: "d", Type: "datetime", Default: "2024-01-02T03:04:05Z"}),
			attributeCmp(Attribute{Key: "d", Type: "datetime", Default: "2024-01-02T03:04:05.000Z"}), nil},
		{"ascending desc flags are none", indexCmp(Index{Key: "i", Type: "key", Attributes: []string{"a", "b"}, Desc: []bool{false, false}}),
			indexCmp(Index{Key: "i", Type: "key", Attributes: []string{"a", "b"}}), nil},
		{"permissions are a set", bucketCmp(Bucket{ID: "b", Name: "B", Permissions: []string{`read("any")`, `write("users")`}, Compression: "none"}),
			bucketCmp(Bucket{ID: "b", Name: "B", Permissions: []string{`write("users")`, `read("any")`}}), nil},
		{"enabled is the default", databaseCmp(Database{ID: "d", Name: "D", Enabled: new(true)}), databaseCmp(Database{ID: "d", Name: "D"}), nil},
		{"the default timeout", functionCmp(Function{ID: "f", Name: "F", Runtime: "js", Timeout: 15}), functionCmp(Function{ID: "f", Name: "F", Runtime: "js"}), nil},
		{"a secret's variable name is not compared", functionCmp(Function{ID: "f", Variables: []Variable{{Key: "K", SecretEnv: "A"}}}),
			functionCmp(Function{ID: "f", Variables: []Variable{{Key: "K", SecretEnv: "B"}}}), nil},
		{"a secret that became plain", functionCmp(Function{ID: "f", Variables: []Variable{{Key: "K", Value: "v"}}}),
			functionCmp(Function{ID: "f", Variables: []Variable{{Key: "K", SecretEnv: "B"}}}), []string{"variables"}},
		{"durations", authCmp(&Auth{SessionDuration: "720h"}), authCmp(&Auth{SessionDuration: "720h0m0s"}), nil},
		{"collection fields by their file names", collectionCmp(Collection{ID: "c", Name: "A", DocumentSecurity: true}), collectionCmp(Collection{ID: "c", Name: "B"}),
			[]string{"documentSecurity", "name"}},
	} {
		if got := differs(tc.a, tc.b); !slices.Equal(got, tc.want) {
			t.Errorf("%s: differs = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// KeepLocal carries the local file's code paths and secrets' variable
// names into a pulled file, for resources both have, and nothing else.
func TestKeepLocal(t *testing.T) {
	pulled := &File{Version: Version,
		Auth: &Auth{SMTP: &SMTP{Host: "h", Port: 25, SenderEmail: "a@b", PasswordEnv: smtpPasswordEnv()},
			OAuthProviders: []OAuthProvider{{ID: "gh", Kind: "github", ClientID: "c", ClientSecretEnv: oauthSecretEnv("gh")}}},
		Functions: []Function{{ID: "f", Name: "F", Runtime: "js", Variables: []Variable{{Key: "K", SecretEnv: "K"}, {Key: "P", Value: "v"}}}, {ID: "g", Name: "G", Runtime: "js"}},
	}
	local := &File{Version: Version,
		Auth: &Auth{SMTP: &SMTP{PasswordEnv: "MAIL_PW"}, OAuthProviders: []OAuthProvider{{ID: "gh", ClientSecretEnv: "GH_SECRET"}, {ID: "gone", ClientSecretEnv: "X"}}},
		Functions: []Function{{ID: "f", Code: &Code{Path: "fn/f"}, Variables: []Variable{{Key: "K", SecretEnv: "F_K"}, {Key: "P", SecretEnv: "NOT_SECRET_ANY_MORE"}}},
			{ID: "h", Code: &Code{Path: "fn/h"}}},
	}
	KeepLocal(pulled, local)
	if pulled.Auth.SMTP.PasswordEnv != "MAIL_PW" || pulled.Auth.OAuthProviders[0].ClientSecretEnv != "GH_SECRET" {
		t.Errorf("auth secrets' names: %+v", pulled.Auth)
	}
	f := pulled.Functions[0]
	if f.Code == nil || f.Code.Path != "fn/f" || f.Variables[0].SecretEnv != "F_K" || f.Variables[1].SecretEnv != "" || f.Variables[1].Value != "v" {
		t.Errorf("function f: %+v", f)
	}
	if pulled.Functions[1].Code != nil {
		t.Errorf("function g got code %+v", pulled.Functions[1].Code)
	}
}
