// Package egress says which addresses code Cairn runs on a project's
// behalf (functions' fetch, webhooks) may reach: public ones only, unless
// the operator allows a private range. Pure: it classifies addresses, it
// dials nothing.
package egress

import (
	"net/netip"
	"strings"
)

// specialNets are non-public ranges netip has no predicate for.
var specialNets = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "reserved"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "reserved"},
	{netip.MustParsePrefix("100::/64"), "reserved"},
	{netip.MustParsePrefix("2001::/23"), "reserved"},
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// NonPublic names the kind of a non-public address ("loopback",
// "private"…), or returns "" for a public one.
func NonPublic(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip.IsUnspecified():
		return "unspecified"
	}
	for _, s := range specialNets {
		if s.p.Contains(ip) {
			return s.reason
		}
	}
	if ip.Is6() {
		b := ip.As16()
		// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address.
		if nat64.Contains(ip) {
			return NonPublic(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
		if b[0] == 0x20 && b[1] == 0x02 {
			return NonPublic(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	return ""
}

// Refused returns why ip may not be reached ("" when it may): allow lists
// the ranges the operator opened.
func Refused(ip netip.Addr, allow []netip.Prefix) string {
	ip = ip.Unmap()
	for _, n := range allow {
		if n.Contains(ip) {
			return ""
		}
	}
	return NonPublic(ip)
}

// Allow is an operator's allow list (--function-fetch-allow,
// --webhook-allow): addresses and CIDRs checked at dial time with Refused,
// and host names whose every address may be dialled.
type Allow struct {
	Nets  []netip.Prefix
	hosts map[string]bool
}

// ParseAllow reads entries that are CIDRs, addresses (IPv6 with or without
// brackets) or host names, case and a final dot ignored; empty ones are
// skipped.
func ParseAllow(entries []string) Allow {
	a := Allow{hosts: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(strings.ToLower(e))
		if p, err := netip.ParsePrefix(e); err == nil {
			a.Nets = append(a.Nets, p.Masked())
		} else if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			a.Nets = append(a.Nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		} else if e != "" {
			a.hosts[strings.TrimSuffix(e, ".")] = true
		}
	}
	return a
}

// Host reports whether host (as in a dial address) is an allowed name.
func (a Allow) Host(host string) bool {
	return a.hosts[strings.TrimSuffix(strings.ToLower(host), ".")]
}
