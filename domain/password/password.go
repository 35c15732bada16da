// Package password hashes and verifies end-user passwords and checks them
// against a project's password policy.
//
// New hashes are argon2id PHC strings (Hash, with Default as the cost floor).
// Verify also accepts hashes imported from other systems — argon2id,
// argon2i, bcrypt and scrypt — and says when a hash should be upgraded to
// argon2id at Default cost. Policy.Check enforces length limits and,
// optionally, rejects passwords from a bundled list of common passwords.
//
// Like everything under domain, the package is pure: it performs no I/O and
// draws no random numbers. Salts are arguments: the caller reads at least 16
// bytes from a CSPRNG (crypto/rand) and passes them to Hash.
//
// # Accepted encodings
//
// Base64 fields are standard base64 without padding (RawStdEncoding), as in
// the argon2 reference implementation; bcrypt uses its own alphabet.
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//	$argon2i$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//	$2a$<cost>$<22-char salt><31-char hash>   (also $2b$ and $2y$)
//	$scrypt$ln=<log2 N>,r=<block size>,p=<parallelism>$<salt>$<hash>
//
// Only argon2 version 19 (0x13) is accepted. The scrypt form is Cairn's own
// PHC-style spelling: an importer converts scrypt hashes from another system
// into it (raw salt and derived-key bytes, base64 as above).
//
// To keep verification of a hostile import from becoming a denial of
// service, Verify rejects parameters beyond these bounds (the constants
// below): argon2 memory ≤ 256 MiB, passes ≤ 4, lanes ≤ 16; bcrypt cost
// ≤ 14; scrypt N ≤ 2^18, r ≤ 32, p ≤ 16, memory (128·N·r bytes)
// ≤ 256 MiB and work (N·r·p) ≤ 2^22.
// Salts must be 8 to 256 bytes and hashes 16 to 256 bytes.
//
// bcrypt only ever reads the first 72 bytes of a password, so an imported
// bcrypt hash matches any password that shares those 72 bytes, exactly as it
// did in the system it came from; Verify reports rehash for every bcrypt
// hash, and the argon2id hash that replaces it uses the whole password.
package password

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cairn-dev/cairn/domain"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Params are argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over memory.
	Time uint32
	// Threads is the number of lanes (degree of parallelism).
	Threads uint8
	// KeyLen is the length of the derived hash in bytes.
	KeyLen uint32
}

// Default is OWASP's minimum argon2id configuration (19 MiB, 2 passes, 1
// lane, 32-byte hash). Hashes weaker than this are reported for rehash.
var Default = Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32}

// Bounds on what Hash produces and Verify accepts.
const (
	// MinSaltLen is the shortest salt Hash accepts.
	MinSaltLen = 16

	// Bounds on imported hashes keep one verification under about a second
	// and 256 MiB on these machines: a sign-in must not be a DoS.
	maxArgonMemory  = 1 << 18 // KiB = 256 MiB
	maxArgonTime    = 4
	maxArgonThreads = 16
	maxBcryptCost   = 14
	maxScryptLogN   = 18
	maxScryptR      = 32
	maxScryptP      = 16
	maxScryptMemory = 1 << 28 // bytes, 128·N·r
	maxScryptWork   = 1 << 22 // N·r·p
	minImportSalt   = 8
	maxSaltLen      = 256
	minKeyLen       = 16
	maxKeyLen       = 256
	maxEncodedLen   = 1024
)

// Hash derives an argon2id hash of password with the given salt and cost
// and returns it as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// The salt must be at least MinSaltLen bytes from a CSPRNG. Parameters below
// Default are accepted (tests use cheap ones) but Verify reports them for
// rehash. Bad arguments are programming errors and come back as
// KindInternal.
func Hash(password string, salt []byte, p Params) (string, error) {
	if len(salt) < MinSaltLen || len(salt) > maxSaltLen {
		return "", domain.Errorf(domain.KindInternal, "password: salt must be %d to %d bytes, got %d", MinSaltLen, maxSaltLen, len(salt))
	}
	if err := checkArgon(p.Memory, p.Time, p.Threads); err != nil {
		return "", domain.Errorf(domain.KindInternal, "password: %s", err)
	}
	if p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		return "", domain.Errorf(domain.KindInternal, "password: key length must be %d to %d bytes, got %d", minKeyLen, maxKeyLen, p.KeyLen)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodeArgon("argon2id", p, salt, key), nil
}

func encodeArgon(alg string, p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", alg, argon2.Version,
		p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// checkArgon validates argon2 cost parameters against the accepted bounds.
func checkArgon(memory, time uint32, threads uint8) error {
	switch {
	case threads < 1 || threads > maxArgonThreads:
		return fmt.Errorf("argon2 parallelism p=%d out of range 1..%d", threads, maxArgonThreads)
	case time < 1 || time > maxArgonTime:
		return fmt.Errorf("argon2 time t=%d out of range 1..%d", time, maxArgonTime)
	case memory < 8*uint32(threads) || memory > maxArgonMemory:
		return fmt.Errorf("argon2 memory m=%d KiB out of range %d..%d", memory, 8*uint32(threads), maxArgonMemory)
	}
	return nil
}

// Verify checks password against an encoded hash (see the package comment
// for the accepted encodings). A wrong password is ok=false with a nil
// error; a malformed or out-of-bounds encoding is a *domain.Error of
// KindInvalid naming what is wrong.
//
// rehash is reported only when ok is true: it says the hash is not argon2id
// at Default cost or better (memory, passes, a 32-byte hash, a 16-byte salt),
// so the caller should store Hash(password, newSalt, Default) now that it
// knows the password.
func Verify(password, encoded string) (ok, rehash bool, err error) {
	if len(encoded) > maxEncodedLen {
		return false, false, invalid("longer than %d characters", maxEncodedLen)
	}
	alg, _, found := strings.Cut(strings.TrimPrefix(encoded, "$"), "$")
	if !strings.HasPrefix(encoded, "$") || !found {
		return false, false, invalid("not a $-delimited hash string")
	}
	switch alg {
	case "argon2id", "argon2i":
		return verifyArgon(password, encoded)
	case "2a", "2b", "2y":
		return verifyBcrypt(password, encoded)
	case "scrypt":
		return verifyScrypt(password, encoded)
	default:
		return false, false, invalid("unsupported algorithm %q", alg)
	}
}

func invalid(format string, args ...any) *domain.Error {
	return domain.Errorf(domain.KindInvalid, "password hash: "+format, args...)
}

// phc splits "$alg$<fields...>" into its fields after alg, checking the count.
func phc(encoded string, n int) ([]string, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != n+2 || parts[0] != "" {
		return nil, invalid("%s: want %d $-separated fields, got %d", parts[1], n, len(parts)-2)
	}
	return parts[2:], nil
}

// params parses "k1=v1,k2=v2,..." with exactly the given keys in order.
func params(alg, s string, keys ...string) ([]uint32, error) {
	fields := strings.Split(s, ",")
	if len(fields) != len(keys) {
		return nil, invalid("%s: parameters %q: want %s", alg, s, strings.Join(keys, ","))
	}
	out := make([]uint32, len(keys))
	for i, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		if k != keys[i] {
			return nil, invalid("%s: parameters %q: want %s", alg, s, strings.Join(keys, ","))
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, invalid("%s: parameter %s=%q is not a number", alg, k, v)
		}
		out[i] = uint32(n)
	}
	return out, nil
}

func decodeSaltKey(alg, salt, key string) ([]byte, []byte, error) {
	s, err := base64.RawStdEncoding.DecodeString(salt)
	if err != nil {
		return nil, nil, invalid("%s: salt is not unpadded base64", alg)
	}
	if len(s) < minImportSalt || len(s) > maxSaltLen {
		return nil, nil, invalid("%s: salt is %d bytes, want %d to %d", alg, len(s), minImportSalt, maxSaltLen)
	}
	k, err := base64.RawStdEncoding.DecodeString(key)
	if err != nil {
		return nil, nil, invalid("%s: hash is not unpadded base64", alg)
	}
	if len(k) < minKeyLen || len(k) > maxKeyLen {
		return nil, nil, invalid("%s: hash is %d bytes, want %d to %d", alg, len(k), minKeyLen, maxKeyLen)
	}
	return s, k, nil
}

func verifyArgon(password, encoded string) (ok, rehash bool, err error) {
	f, err := phc(encoded, 4)
	if err != nil {
		return false, false, err
	}
	alg := strings.Split(encoded, "$")[1]
	if f[0] != "v="+strconv.Itoa(argon2.Version) {
		return false, false, invalid("%s: version %q unsupported, want v=%d", alg, f[0], argon2.Version)
	}
	mtp, err := params(alg, f[1], "m", "t", "p")
	if err != nil {
		return false, false, err
	}
	if mtp[2] > 255 {
		return false, false, invalid("%s: argon2 parallelism p=%d out of range 1..%d", alg, mtp[2], maxArgonThreads)
	}
	p := Params{Memory: mtp[0], Time: mtp[1], Threads: uint8(mtp[2])}
	if err := checkArgon(p.Memory, p.Time, p.Threads); err != nil {
		return false, false, invalid("%s: %s", alg, err)
	}
	salt, want, err := decodeSaltKey(alg, f[2], f[3])
	if err != nil {
		return false, false, err
	}
	p.KeyLen = uint32(len(want))
	var got []byte
	if alg == "argon2id" {
		got = argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	} else {
		got = argon2.Key([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	weak := alg != "argon2id" || p.Memory < Default.Memory || p.Time < Default.Time ||
		p.KeyLen < Default.KeyLen || len(salt) < MinSaltLen
	return true, weak, nil
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func verifyBcrypt(password, encoded string) (ok, rehash bool, err error) {
	// $2b$10$ + 22 salt + 31 hash characters.
	if len(encoded) != 60 || encoded[6] != '$' {
		return false, false, invalid("bcrypt: want $2b$<cost>$<53 characters>, 60 in all")
	}
	cost, err := strconv.Atoi(encoded[4:6])
	if err != nil || encoded[4] == '+' || encoded[4] == '-' {
		return false, false, invalid("bcrypt: cost %q is not a number", encoded[4:6])
	}
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return false, false, invalid("bcrypt: cost %d out of range %d..%d", cost, bcrypt.MinCost, maxBcryptCost)
	}
	if strings.Trim(encoded[7:], bcryptAlphabet) != "" {
		return false, false, invalid("bcrypt: salt and hash contain characters outside the bcrypt alphabet")
	}
	switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password)); {
	case err == nil:
		return true, true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	default:
		return false, false, invalid("bcrypt: %s", err)
	}
}

func verifyScrypt(password, encoded string) (ok, rehash bool, err error) {
	f, err := phc(encoded, 3)
	if err != nil {
		return false, false, err
	}
	lrp, err := params("scrypt", f[0], "ln", "r", "p")
	if err != nil {
		return false, false, err
	}
	ln, r, p := uint64(lrp[0]), uint64(lrp[1]), uint64(lrp[2])
	switch {
	case ln < 1 || ln > maxScryptLogN:
		return false, false, invalid("scrypt: ln=%d out of range 1..%d", ln, maxScryptLogN)
	case r < 1 || r > maxScryptR:
		return false, false, invalid("scrypt: r=%d out of range 1..%d", r, maxScryptR)
	case p < 1 || p > maxScryptP:
		return false, false, invalid("scrypt: p=%d out of range 1..%d", p, maxScryptP)
	}
	n := uint64(1) << ln
	if 128*n*r > maxScryptMemory {
		return false, false, invalid("scrypt: memory 128·N·r = %d bytes exceeds %d", 128*n*r, maxScryptMemory)
	}
	if n*r*p > maxScryptWork {
		return false, false, invalid("scrypt: work N·r·p = %d exceeds %d", n*r*p, maxScryptWork)
	}
	salt, want, err := decodeSaltKey("scrypt", f[1], f[2])
	if err != nil {
		return false, false, err
	}
	got, err := scrypt.Key([]byte(password), salt, int(n), int(r), int(p), len(want))
	if err != nil {
		return false, false, invalid("scrypt: %s", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, true, nil
}
