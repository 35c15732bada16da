// Package webhooks delivers a project's events to HTTP endpoints: the
// signature receivers check (Sign, Verify), the outbound client with its
// SSRF guard (NewClient), and one delivery attempt (Post). The durable,
// ordered consumption of the log and the delivery records live in the API
// server (api/webhooksworker.go).
package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the webhook's secret>".
	HeaderSignature = "Cairn-Webhook-Signature"
	// HeaderID is the event's id (a ULID): the same on every attempt, so
	// a receiver drops duplicates with it.
	HeaderID = "Cairn-Webhook-Id"
	// HeaderEvent is the event's name ("databases.d.collections.c.documents.x.create").
	HeaderEvent = "Cairn-Webhook-Event"
	// HeaderAttempt counts attempts at this event, from 1.
	HeaderAttempt = "Cairn-Webhook-Attempt"
)

// ReplayWindow is how old a signature's timestamp receivers should accept
// (Verify's default): a captured request replayed later is refused.
const ReplayWindow = 5 * time.Minute

// Sign returns the HeaderSignature value for body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhooks: signature does not match")
	ErrExpired      = errors.New("webhooks: signature timestamp outside the replay window")
)

// Verify checks a HeaderSignature value against body at now: a v1 MAC
// matches and t is within window of now (ReplayWindow when 0).
func Verify(secret []byte, header string, body []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = ReplayWindow
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = ok || hmac.Equal(s, want)
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrExpired
	}
	return nil
}
