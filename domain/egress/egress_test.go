package egress

import (
	"net/netip"
	"testing"
)

func TestRefused(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	for addr, want := range map[string]string{
		"8.8.8.8":            "",
		"127.0.0.1":          "loopback",
		"::1":                "loopback",
		"::ffff:127.0.0.1":   "loopback",
		"10.0.0.1":           "private",
		"10.1.2.3":           "", // allowed by the operator
		"169.254.169.254":    "link-local",
		"100.64.0.1":         "shared (carrier-grade NAT)",
		"64:ff9b::a9fe:a9fe": "link-local", // NAT64 of 169.254.169.254
		"2002:7f00:1::":      "loopback",   // 6to4 of 127.0.0.1
		"0.0.0.0":            "unspecified",
		"2606:4700::1111":    "",
	} {
		if got := Refused(netip.MustParseAddr(addr), allow); got != want {
			t.Errorf("Refused(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestParseAllow(t *testing.T) {
	a := ParseAllow([]string{" 10.1.0.0/16 ", "::ffff:192.168.7.7", "[fd00::1]", "Hooks.Internal.", "", "printer"})
	want := []string{"10.1.0.0/16", "192.168.7.7/32", "fd00::1/128"}
	if len(a.Nets) != len(want) {
		t.Fatalf("nets %v, want %v", a.Nets, want)
	}
	for i, w := range want {
		if a.Nets[i].String() != w {
			t.Errorf("net %d = %s, want %s", i, a.Nets[i], w)
		}
	}
	for host, ok := range map[string]bool{"hooks.internal": true, "HOOKS.internal.": true, "printer": true, "other": false, "10.1.2.3": false} {
		if a.Host(host) != ok {
			t.Errorf("Host(%q) = %v, want %v", host, !ok, ok)
		}
	}
	if Refused(netip.MustParseAddr("10.1.2.3"), a.Nets) != "" || Refused(netip.MustParseAddr("10.2.0.1"), a.Nets) == "" {
		t.Error("the parsed CIDR does not govern Refused")
	}
}
