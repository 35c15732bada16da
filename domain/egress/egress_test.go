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
