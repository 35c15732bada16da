package mfa

import (
	"math/rand/v2"
	"testing"
	"time"
)

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1111111111, 0)
	code := Code(rfcSecret, Step(now))
	for b.Loop() {
		if _, ok := Verify(rfcSecret, code, now, 0); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkUseRecoveryCode(b *testing.B) {
	codes, hashes, err := NewRecoveryCodes(rand.NewChaCha8([32]byte{1}), 10)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := UseRecoveryCode(hashes, codes[9]); !ok {
			b.Fatal("refused")
		}
	}
}
