package hosts

import "testing"

func TestClassify(t *testing.T) {
	s, err := New("https://api.example.com", "sites.example.net")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]Target{
		"api.example.com":                     {Kind: API, Host: "api.example.com"},
		"API.example.com:443":                 {Kind: API, Host: "api.example.com"},
		"127.0.0.1:8080":                      {Kind: API, Host: "127.0.0.1"},
		"[::1]:8080":                          {Kind: API, Host: "::1"},
		"localhost":                           {Kind: API, Host: "localhost"},
		"web.acme.sites.example.net":          {Kind: Site, Project: "acme", Site: "web", Host: "web.acme.sites.example.net"},
		"WEB.acme.sites.example.net:8443":     {Kind: Site, Project: "acme", Site: "web", Host: "web.acme.sites.example.net"},
		"01abc.web.acme.sites.example.net":    {Kind: Preview, Project: "acme", Site: "web", Deployment: "01abc", Host: "01abc.web.acme.sites.example.net"},
		"hook.acme.fn.sites.example.net":      {Kind: Function, Project: "acme", Function: "hook", Host: "hook.acme.fn.sites.example.net"},
		"sites.example.net":                   {Kind: Custom, Host: "sites.example.net"},
		"acme.sites.example.net":              {Kind: Unknown, Host: "acme.sites.example.net"},
		"a.b.c.d.sites.example.net":           {Kind: Unknown, Host: "a.b.c.d.sites.example.net"},
		"shop.client.com":                     {Kind: Custom, Host: "shop.client.com"},
		"web.acme.sites.example.net.evil.com": {Kind: Custom, Host: "web.acme.sites.example.net.evil.com"},
		"web.acme.xsites.example.net":         {Kind: Custom, Host: "web.acme.xsites.example.net"},
	} {
		if got := s.Classify(host); got != want {
			t.Errorf("Classify(%q) = %+v, want %+v", host, got, want)
		}
	}
	if got := s.SiteURL("acme", "Web"); got != "https://web.acme.sites.example.net/" {
		t.Errorf("SiteURL = %s", got)
	}
	if got := s.FunctionURL("acme", "hook"); got != "https://hook.acme.fn.sites.example.net/" {
		t.Errorf("FunctionURL = %s", got)
	}
}

func TestDevelopmentDefaults(t *testing.T) {
	// The defaults: API on localhost, sites under localhost.
	s, err := New("http://localhost:8080", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Classify("localhost:8080"); got.Kind != API {
		t.Errorf("localhost is %+v", got)
	}
	if got := s.Classify("web.acme.localhost:8080"); got.Kind != Site {
		t.Errorf("web.acme.localhost is %+v", got)
	}
	if got := s.PreviewURL("acme", "web", "01abc"); got != "http://01abc.web.acme.localhost:8080/" {
		t.Errorf("PreviewURL = %s", got)
	}
}

func TestAPIHostUnderSitesDomainRefused(t *testing.T) {
	if _, err := New("https://api.sites.example.com", "sites.example.com"); err == nil {
		t.Fatal("an API host under the sites domain was accepted")
	}
	if _, err := New("not a url", "x"); err == nil {
		t.Fatal("a malformed public URL was accepted")
	}
}
