package site

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/domain"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
)

var reserved = Reserved{APIHost: "api.cairn.example", SitesDomain: "sites.cairn.example"}

func TestCheckDomain(t *testing.T) {
	for d, why := range map[string]string{
		"www.shop.test":                  "",
		"api.cairn.example":              "API's own host",
		"sites.cairn.example":            "under the sites domain",
		"web.acme.sites.cairn.example":   "under the sites domain",
		"127.0.0.1":                      "IP address",
		"::1":                            "IP address",
		"[::1]":                          "IP address",
		"[2001:db8::1]":                  "IP address",
		"localhost":                      "loopback",
		"app.localhost":                  "loopback",
		"intranet":                       "single label",
		"":                               "empty",
		"a..com":                         `label ""`,
		"-a.com":                         `label "-a"`,
		"a_b.com":                        `label "a_b"`,
		"bücher.example":                 "xn--",
		"0x7f.1":                         "numeric label",
		"foo.123":                        "numeric label",
		strings.Repeat("a.", 150) + "io": "at most 253",
		strings.Repeat("a", 64) + ".com": "1 to 63",
	} {
		err := CheckDomain("settings.domains", d, reserved)
		if why == "" {
			if err != nil {
				t.Errorf("%q refused: %v", d, err)
			}
			continue
		}
		de, ok := err.(*domain.Error)
		if !ok || de.Kind != domain.KindInvalid || de.Field != "settings.domains" || !strings.Contains(de.Message, why) {
			t.Errorf("%q: want invalid settings.domains saying %q, got %v", d, why, err)
		}
	}
	if got := NormalizeDomain("WWW.Shop.Test."); got != "www.shop.test" {
		t.Errorf("NormalizeDomain = %q", got)
	}
}

func TestVerifyDomain(t *testing.T) {
	s := given(t, Create{ID: "web", ProjectID: "p", Name: "Web", Reserved: reserved, Now: t0,
		Settings: &eventsv1.SiteSettings{Domains: []string{"WWW.Shop.Test"}}})
	if got := s.GetSettings().GetDomains(); len(got) != 1 || got[0] != "www.shop.test" {
		t.Fatalf("domains not normalised: %v", got)
	}
	if Serves(s, "www.shop.test") {
		t.Fatal("an unproven domain serves")
	}
	verify := VerifyDomain{Domain: "www.shop.test", RecordName: "_cairn-challenge.www.shop.test", Want: "tok", Now: t0}
	_, err := Decide(s, verify)
	if de, ok := err.(*domain.Error); !ok || de.Kind != domain.KindFailedPrecondition ||
		!strings.Contains(de.Message, "_cairn-challenge.www.shop.test") || !strings.Contains(de.Message, "no TXT record") {
		t.Fatalf("missing record: %v", err)
	}
	verify.Records = []string{"other", "v=spf1 -all"}
	if _, err := Decide(s, verify); domain.KindOf(err) != domain.KindFailedPrecondition || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("wrong record: %v", err)
	}
	other := verify
	other.Domain, other.Records = "other.test", []string{"tok"}
	if _, err := Decide(s, other); domain.KindOf(err) != domain.KindFailedPrecondition {
		t.Fatalf("an unlisted domain verified: %v", err)
	}
	verify.Records = []string{"other", "tok"}
	evs, err := Decide(s, verify)
	if err != nil || len(evs) != 1 || evs[0].GetSiteDomainVerified().GetDomain() != "www.shop.test" {
		t.Fatalf("verify: %v %v", evs, err)
	}
	s = Evolve(s, evs[0])
	if !Serves(s, "www.shop.test") {
		t.Fatal("a proven domain does not serve")
	}
	if evs, err := Decide(s, verify); err != nil || len(evs) != 0 {
		t.Fatalf("verifying again must be a no-op: %v %v", evs, err)
	}
	// Keeping the domain keeps the proof; dropping it drops the proof, and
	// re-adding it needs a new one.
	s = given(t, Create{ID: "web", ProjectID: "p", Name: "Web", Now: t0, Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test"}}})
	s = Evolve(s, mustDecide(t, s, verify)[0])
	s = Evolve(s, mustDecide(t, s, Update{Settings: &eventsv1.SiteSettings{SpaFallback: true, Domains: []string{"www.shop.test", "b.shop.test"}}, Now: t0})[0])
	if !Serves(s, "www.shop.test") {
		t.Fatal("an unrelated update dropped the proof")
	}
	s = Evolve(s, mustDecide(t, s, Update{Settings: &eventsv1.SiteSettings{}, Now: t0})[0])
	if len(s.GetVerifiedDomains()) != 0 {
		t.Fatalf("removing the domain kept its proof: %v", s.GetVerifiedDomains())
	}
	s = Evolve(s, mustDecide(t, s, Update{Settings: &eventsv1.SiteSettings{Domains: []string{"www.shop.test"}}, Now: t0})[0])
	if Serves(s, "www.shop.test") {
		t.Fatal("a re-added domain serves without a new proof")
	}
	if _, err := Decide(s, Update{Settings: &eventsv1.SiteSettings{Domains: []string{"api.cairn.example"}}, Reserved: reserved, Now: t0}); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("update to the API host: %v", err)
	}
}

func mustDecide(t *testing.T, s State, c Command) []*eventsv1.Envelope {
	t.Helper()
	evs, err := Decide(s, c)
	if err != nil || len(evs) == 0 {
		t.Fatalf("%T: %v %v", c, evs, err)
	}
	return evs
}
