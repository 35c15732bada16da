package api

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/cairn-dev/cairn/api/ratelimit"
)

// Brute-force limits on the unauthenticated account endpoints, per node,
// keyed by project and client address or by project and identifier. The
// identifier limits apply whether or not an account exists, so they reveal
// nothing.
type authLimits struct {
	signInIP, signInID *ratelimit.Limiter
	signUpIP           *ratelimit.Limiter
	mailIP, mailID     *ratelimit.Limiter
	tokenIP, tokenID   *ratelimit.Limiter
	mfaUser            *ratelimit.Limiter
	trustedProxies     []netip.Prefix
	disabled           bool
}

// DefaultAuthRules are the limits: generous enough for people who mistype,
// far too slow for guessing passwords or codes.
var defaultAuthRules = map[string]ratelimit.Rule{
	"signInIP": {Name: "sign-in attempts from this address", Every: 2 * time.Second, Burst: 30},
	"signInID": {Name: "sign-in attempts for this email", Every: 6 * time.Second, Burst: 10},
	"signUpIP": {Name: "sign-ups from this address", Every: 6 * time.Second, Burst: 20},
	"mailIP":   {Name: "mails requested from this address", Every: 10 * time.Second, Burst: 10},
	"mailID":   {Name: "mails requested for this email", Every: time.Minute, Burst: 3},
	"tokenIP":  {Name: "token checks from this address", Every: 2 * time.Second, Burst: 30},
	"tokenID":  {Name: "token checks for this user", Every: 6 * time.Second, Burst: 10},
	"mfaUser":  {Name: "second-factor codes for this user", Every: 30 * time.Second, Burst: 10},
}

func newAuthLimits(trusted []netip.Prefix, disabled bool) (*authLimits, error) {
	l := &authLimits{trustedProxies: trusted, disabled: disabled}
	for name, dst := range map[string]**ratelimit.Limiter{"signInIP": &l.signInIP, "signInID": &l.signInID, "signUpIP": &l.signUpIP,
		"mailIP": &l.mailIP, "mailID": &l.mailID, "tokenIP": &l.tokenIP, "tokenID": &l.tokenID, "mfaUser": &l.mfaUser} {
		lim, err := ratelimit.New(defaultAuthRules[name])
		if err != nil {
			return nil, err
		}
		*dst = lim
	}
	return l, nil
}

// clientIP is the caller's address: the peer, or, when the peer is a
// trusted proxy, the last address the proxies did not add themselves.
func (l *authLimits) clientIP(info *connect.CallInfo) string {
	host, _, err := net.SplitHostPort(info.PeerAddr)
	if err != nil {
		host = info.PeerAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !l.trusted(addr) {
		return host
	}
	hops := strings.Split(strings.Join(info.RequestHeader().Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !l.trusted(a) {
			return a.String()
		}
	}
	return host
}

func (l *authLimits) trusted(a netip.Addr) bool {
	for _, p := range l.trustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// check applies byIP to the caller's address and byID to id (when both
// are set) within project.
func (s *Server) limit(ctx context.Context, project string, byIP *ratelimit.Limiter, byID *ratelimit.Limiter, id string) error {
	l := s.limits
	if l == nil || l.disabled {
		return nil
	}
	now := s.now()
	if byIP != nil {
		if info, ok := connect.CallInfoForServerContext(ctx); ok {
			if err := byIP.Refuse(ctx, project+"\x00"+l.clientIP(info), now); err != nil {
				return err
			}
		}
	}
	if byID != nil && id != "" {
		return byID.Refuse(ctx, project+"\x00"+id, now)
	}
	return nil
}
