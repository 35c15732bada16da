package password

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/domain"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// cheap keeps tests fast; Verify reports it for rehash.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

var salt16 = []byte("0123456789abcdef")

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func mustHash(t *testing.T, pw string, salt []byte, p Params) string {
	t.Helper()
	h, err := Hash(pw, salt, p)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return h
}

func TestHashFormat(t *testing.T) {
	h := mustHash(t, "correct horse", salt16, Default)
	key := argon2.IDKey([]byte("correct horse"), salt16, 2, 19456, 1, 32)
	want := "$argon2id$v=19$m=19456,t=2,p=1$" + b64(salt16) + "$" + b64(key)
	if h != want {
		t.Fatalf("Hash = %s\nwant   %s", h, want)
	}
	// Same inputs, same output: the package is deterministic.
	if h2 := mustHash(t, "correct horse", salt16, Default); h2 != h {
		t.Fatal("Hash is not deterministic")
	}
	if h3 := mustHash(t, "correct horse", []byte("fedcba9876543210"), Default); h3 == h {
		t.Fatal("different salts gave the same hash")
	}
}

func TestHashRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		salt []byte
		p    Params
		want string
	}{
		{"short salt", salt16[:15], Default, "salt"},
		{"nil salt", nil, Default, "salt"},
		{"huge salt", make([]byte, 257), Default, "salt"},
		{"zero time", salt16, Params{Memory: 19456, Time: 0, Threads: 1, KeyLen: 32}, "time"},
		{"zero threads", salt16, Params{Memory: 19456, Time: 2, Threads: 0, KeyLen: 32}, "parallelism"},
		{"tiny memory", salt16, Params{Memory: 7, Time: 2, Threads: 1, KeyLen: 32}, "memory"},
		{"huge memory", salt16, Params{Memory: 1<<20 + 1, Time: 2, Threads: 1, KeyLen: 32}, "memory"},
		{"short key", salt16, Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 15}, "key length"},
		{"zero params", salt16, Params{}, "parallelism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Hash("pw", tc.salt, tc.p)
			if err == nil || domain.KindOf(err) != domain.KindInternal || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (kind %v), want internal error mentioning %q", err, domain.KindOf(err), tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pw         string
		p          Params
		wantRehash bool
	}{
		{"default", "correct horse battery staple", Default, false},
		{"stronger", "pw", Params{Memory: 32768, Time: 3, Threads: 2, KeyLen: 32}, false},
		{"more lanes same memory", "pw", Params{Memory: 19456, Time: 2, Threads: 4, KeyLen: 32}, false},
		{"longer key", "pw", Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 64}, false},
		{"cheap", "pw", cheap, true},
		{"low memory", "pw", Params{Memory: 19455, Time: 2, Threads: 1, KeyLen: 32}, true},
		{"one pass", "pw", Params{Memory: 65536, Time: 1, Threads: 1, KeyLen: 32}, true},
		{"short key", "pw", Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 16}, true},
		{"empty password", "", cheap, true},
		{"unicode", "pässwörd ✓ 密码", cheap, true},
		{"long", strings.Repeat("x", 1000), cheap, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := mustHash(t, tc.pw, salt16, tc.p)
			ok, rehash, err := Verify(tc.pw, h)
			if err != nil || !ok || rehash != tc.wantRehash {
				t.Fatalf("Verify(right) = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.wantRehash)
			}
			for _, wrong := range []string{tc.pw + "x", strings.ToUpper(tc.pw) + "!", "", "\x00"} {
				if wrong == tc.pw {
					continue
				}
				ok, rehash, err := Verify(wrong, h)
				if err != nil || ok || rehash {
					t.Fatalf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
				}
			}
		})
	}
}

// vector is an encoded hash from another system with its password.
type vector struct {
	name, pw, encoded string
	wantRehash        bool
}

// externalVectors were produced by other implementations, not by the
// libraries this package uses.
var externalVectors = []vector{
	// phc-winner-argon2 src/test.c, version 0x13 ("password", salt "somesalt").
	{"argon2id reference", "password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", true},
	{"argon2i reference", "password", "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA", true},
	// phc-winner-argon2 README: argon2 somesalt -t 2 -m 16 -p 4 -l 24.
	{"argon2i README p=4 24-byte", "password", "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", true},
	// Openwall crypt_blowfish wrapper.c test vectors.
	{"bcrypt 2a U*U", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", true},
	{"bcrypt 2a U*U*", "U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", true},
	{"bcrypt 2a U*U*U", "U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", true},
	{"bcrypt 2a empty", "", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", true},
	// $2b$ and $2y$ differ from $2a$ only in bugs this input does not hit.
	{"bcrypt 2b U*U", "U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", true},
	{"bcrypt 2y U*U", "U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", true},
	// RFC 7914 section 12 ("pleaseletmein", "SodiumChloride", N=16384, r=8, p=1).
	{"scrypt RFC 7914", "pleaseletmein", "$scrypt$ln=14,r=8,p=1$" + b64([]byte("SodiumChloride")) + "$" +
		b64(unhex("7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887")), true},
}

func unhex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		if _, err := fmt.Sscanf(s[2*i:2*i+2], "%02x", &b[i]); err != nil {
			panic(err)
		}
	}
	return b
}

// generatedVectors builds imported-format hashes with the libraries.
func generatedVectors(t *testing.T) []vector {
	t.Helper()
	salt := bytes.Repeat([]byte{0xA5}, 16)
	pw := "imported secret"
	argonI := argon2.Key([]byte(pw), salt, 3, 32768, 4, 32)
	argonID := argon2.IDKey([]byte(pw), salt, 3, 32768, 4, 32)
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scrypt.Key([]byte(pw), salt, 1<<10, 8, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	return []vector{
		{"argon2id generated", pw, fmt.Sprintf("$argon2id$v=19$m=32768,t=3,p=4$%s$%s", b64(salt), b64(argonID)), false},
		{"argon2i generated", pw, fmt.Sprintf("$argon2i$v=19$m=32768,t=3,p=4$%s$%s", b64(salt), b64(argonI)), true},
		{"bcrypt generated 2a", pw, string(bc), true},
		{"bcrypt generated as 2b", pw, strings.Replace(string(bc), "$2a$", "$2b$", 1), true},
		{"bcrypt generated as 2y", pw, strings.Replace(string(bc), "$2a$", "$2y$", 1), true},
		{"scrypt generated", pw, fmt.Sprintf("$scrypt$ln=10,r=8,p=2$%s$%s", b64(salt), b64(sc)), true},
	}
}

func TestVerifyImported(t *testing.T) {
	for _, v := range append(externalVectors, generatedVectors(t)...) {
		t.Run(v.name, func(t *testing.T) {
			ok, rehash, err := Verify(v.pw, v.encoded)
			if err != nil || !ok || rehash != v.wantRehash {
				t.Fatalf("Verify(right) = %v, %v, %v; want true, %v, nil", ok, rehash, err, v.wantRehash)
			}
			ok, rehash, err = Verify(v.pw+"!", v.encoded)
			if err != nil || ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestVerifyBcryptTruncatesAt72(t *testing.T) {
	long := strings.Repeat("a", 72)
	h, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Documented: bcrypt ignores bytes after the 72nd, as in the source system.
	if ok, rehash, err := Verify(long+"tail", string(h)); !ok || !rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	salt, key := b64(salt16), b64(bytes.Repeat([]byte{1}, 32))
	bcryptBody := "CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	for _, tc := range []struct{ name, encoded, want string }{
		{"empty", "", "not a $-delimited"},
		{"plain text", "password", "not a $-delimited"},
		{"only dollar", "$", "not a $-delimited"},
		{"unknown alg", "$md5$abc$def", `unsupported algorithm "md5"`},
		{"2x bcrypt", "$2x$05$" + bcryptBody, `unsupported algorithm "2x"`},
		{"argon2d", "$argon2d$v=19$m=65536,t=2,p=1$" + salt + "$" + key, `unsupported algorithm "argon2d"`},
		{"too long", "$argon2id$" + strings.Repeat("a", 1100), "longer than 1024"},
		// argon2
		{"argon2 missing fields", "$argon2id$v=19$m=65536,t=2,p=1$" + salt, "want 4 $-separated fields, got 3"},
		{"argon2 extra field", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key + "$x", "want 4 $-separated fields, got 5"},
		{"argon2 no version", "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key + "$", "version"},
		{"argon2 old version", "$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + key, `version "v=16" unsupported`},
		{"argon2 params order", "$argon2id$v=19$t=2,m=65536,p=1$" + salt + "$" + key, "want m,t,p"},
		{"argon2 params missing", "$argon2id$v=19$m=65536,t=2$" + salt + "$" + key, "want m,t,p"},
		{"argon2 params not number", "$argon2id$v=19$m=lots,t=2,p=1$" + salt + "$" + key, `m="lots" is not a number`},
		{"argon2 negative", "$argon2id$v=19$m=65536,t=-2,p=1$" + salt + "$" + key, `t="-2" is not a number`},
		{"argon2 overflow", "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key, "is not a number"},
		{"argon2 bad salt b64", "$argon2id$v=19$m=65536,t=2,p=1$!!!!$" + key, "salt is not unpadded base64"},
		{"argon2 padded salt", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "==$" + key, "salt is not unpadded base64"},
		{"argon2 short salt", "$argon2id$v=19$m=65536,t=2,p=1$" + b64([]byte("1234567")) + "$" + key, "salt is 7 bytes"},
		{"argon2 bad hash b64", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$***", "hash is not unpadded base64"},
		{"argon2 short hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + b64(make([]byte, 15)), "hash is 15 bytes"},
		{"argon2 empty hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$", "hash is 0 bytes"},
		// bcrypt
		{"bcrypt short", "$2a$05$abc", "60 in all"},
		{"bcrypt long", "$2a$05$" + bcryptBody + "x", "60 in all"},
		{"bcrypt cost not number", "$2a$x5$" + bcryptBody, `cost "x5" is not a number`},
		{"bcrypt cost signed", "$2a$+5$" + bcryptBody, `cost "+5" is not a number`},
		{"bcrypt missing dollar", "$2a$05x" + bcryptBody, "60 in all"},
		{"bcrypt bad alphabet", "$2a$05$" + strings.Replace(bcryptBody, "C", "+", 1), "bcrypt alphabet"},
		// scrypt
		{"scrypt missing fields", "$scrypt$ln=14,r=8,p=1$" + salt, "want 3 $-separated fields, got 2"},
		{"scrypt N instead of ln", "$scrypt$n=16384,r=8,p=1$" + salt + "$" + key, "want ln,r,p"},
		{"scrypt zero ln", "$scrypt$ln=0,r=8,p=1$" + salt + "$" + key, "ln=0 out of range"},
		{"scrypt zero r", "$scrypt$ln=14,r=0,p=1$" + salt + "$" + key, "r=0 out of range"},
		{"scrypt zero p", "$scrypt$ln=14,r=8,p=0$" + salt + "$" + key, "p=0 out of range"},
		{"scrypt bad salt", "$scrypt$ln=14,r=8,p=1$@@@@$" + key, "salt is not unpadded base64"},
		{"scrypt short hash", "$scrypt$ln=14,r=8,p=1$" + salt + "$" + b64([]byte("short")), "hash is 5 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := Verify("password", tc.encoded)
			if ok || rehash {
				t.Fatalf("ok, rehash = %v, %v for a malformed hash", ok, rehash)
			}
			if de, isDomain := errors.AsType[*domain.Error](err); !isDomain || de.Kind != domain.KindInvalid {
				t.Fatalf("err = %#v, want *domain.Error of KindInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "password hash: ") {
				t.Fatalf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestVerifyBounds checks that costs beyond the limits are refused before
// any work is done, and that the limits themselves are accepted.
func TestVerifyBounds(t *testing.T) {
	salt, key := b64(salt16), b64(bytes.Repeat([]byte{1}, 32))
	bcryptBody := "CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	for _, tc := range []struct{ name, encoded, want string }{
		{"argon2 memory 256 MiB + 1", fmt.Sprintf("$argon2id$v=19$m=%d,t=1,p=1$%s$%s", 1<<18+1, salt, key), "memory m=262145 KiB out of range 8..262144"},
		{"argon2 memory max uint32", fmt.Sprintf("$argon2id$v=19$m=%d,t=1,p=1$%s$%s", uint32(1<<32-1), salt, key), "memory"},
		{"argon2 memory below 8p", "$argon2id$v=19$m=31,t=1,p=4$" + salt + "$" + key, "memory m=31 KiB out of range 32..262144"},
		{"argon2 time 5", "$argon2id$v=19$m=65536,t=5,p=1$" + salt + "$" + key, "time t=5 out of range 1..4"},
		{"argon2 time 0", "$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + key, "time t=0 out of range"},
		{"argon2 threads 0", "$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + key, "parallelism p=0 out of range"},
		{"argon2 threads 17", "$argon2id$v=19$m=65536,t=2,p=17$" + salt + "$" + key, "parallelism p=17 out of range"},
		{"argon2 threads 256", "$argon2id$v=19$m=65536,t=2,p=256$" + salt + "$" + key, "parallelism p=256 out of range"},
		{"argon2i time 5", "$argon2i$v=19$m=65536,t=5,p=1$" + salt + "$" + key, "time t=5"},
		{"argon2 huge salt", "$argon2id$v=19$m=64,t=1,p=1$" + b64(make([]byte, 257)) + "$" + key, "salt is 257 bytes"},
		{"argon2 huge hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64(make([]byte, 257)), "hash is 257 bytes"},
		{"bcrypt cost 15", "$2a$15$" + bcryptBody, "cost 15 out of range 4..14"},
		{"bcrypt cost 31", "$2b$31$" + bcryptBody, "cost 31 out of range"},
		{"bcrypt cost 3", "$2a$03$" + bcryptBody, "cost 3 out of range"},
		{"scrypt ln 19", "$scrypt$ln=19,r=1,p=1$" + salt + "$" + key, "ln=19 out of range 1..18"},
		{"scrypt r 33", "$scrypt$ln=10,r=33,p=1$" + salt + "$" + key, "r=33 out of range"},
		{"scrypt p 17", "$scrypt$ln=10,r=8,p=17$" + salt + "$" + key, "p=17 out of range"},
		{"scrypt memory", "$scrypt$ln=18,r=9,p=1$" + salt + "$" + key, "memory 128·N·r"},
		{"scrypt work", "$scrypt$ln=18,r=8,p=3$" + salt + "$" + key, "work N·r·p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ok, _, err := Verify("password", tc.encoded)
			if ok || domain.KindOf(err) != domain.KindInvalid || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify = %v, %v; want KindInvalid mentioning %q", ok, err, tc.want)
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Fatalf("rejecting took %v: work was done before the bounds check", d)
			}
		})
	}
	// At the limits (cheap where possible): accepted, wrong hash → false.
	for _, encoded := range []string{
		"$argon2id$v=19$m=128,t=4,p=16$" + salt + "$" + key,
		"$scrypt$ln=1,r=32,p=16$" + salt + "$" + key,
	} {
		if ok, _, err := Verify("password", encoded); ok || err != nil {
			t.Fatalf("Verify(%s) = %v, %v; want false, nil", encoded, ok, err)
		}
	}
}

func TestVerifyAtMaximumCost(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MiB")
	}
	// The most expensive scrypt import accepted: N=2^18, r=8, p=1.
	salt := b64(salt16)
	key := b64(bytes.Repeat([]byte{1}, 32))
	start := time.Now()
	ok, _, err := Verify("password", "$scrypt$ln=18,r=8,p=1$"+salt+"$"+key)
	if ok || err != nil {
		t.Fatalf("Verify = %v, %v; want false, nil", ok, err)
	}
	t.Logf("worst-case scrypt verification: %v", time.Since(start))
}

// BenchmarkPasswordHash measures one argon2id hash at Default cost, which
// bounds the sign-in rate (every sign-in verifies one hash). Besides ns/op
// it reports the single-core ceiling 1/t and the machine ceiling
// GOMAXPROCS/t in hashes/s: what sign-ins could reach if hashing were all
// they did and it scaled perfectly over the cores.
func BenchmarkPasswordHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash("correct horse battery staple", salt16, Default); err != nil {
			b.Fatal(err)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		perCore := float64(b.N) / s
		b.ReportMetric(perCore, "hashes/s/core")
		b.ReportMetric(perCore*float64(runtime.GOMAXPROCS(0)), "ceiling-hashes/s")
	}
}

// BenchmarkPasswordHashParallel hashes on every core at once: the measured
// machine rate, which memory bandwidth (19 MiB per hash) can hold below the
// GOMAXPROCS/t ceiling of BenchmarkPasswordHash.
func BenchmarkPasswordHashParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Hash("correct horse battery staple", salt16, Default); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "hashes/s")
	}
}

// BenchmarkVerifyDefault measures Verify of a Default-cost argon2id hash.
func BenchmarkVerifyDefault(b *testing.B) {
	h, err := Hash("correct horse battery staple", salt16, Default)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := Verify("correct horse battery staple", h); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
