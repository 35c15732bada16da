package api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Secrets a project configures (SMTP passwords, OAuth client secrets, TOTP
// keys) enter the log sealed with a key derived from the instance master
// key (DESIGN §4): AES-256-GCM, bound to the project and the secret's
// purpose so a sealed value cannot be moved to another project or field.

const sealVersion = 1

func (s *Server) sealKey() []byte {
	m := hmac.New(sha256.New, s.masterKey)
	m.Write([]byte("cairn seal v1"))
	return m.Sum(nil)
}

func (s *Server) aead() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.sealKey())
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plaintext for project and purpose.
func (s *Server) seal(project, purpose string, plaintext []byte) ([]byte, error) {
	a, err := s.aead()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plaintext)+a.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return a.Seal(out, out[1:], plaintext, []byte(project+"\x00"+purpose)), nil
}

// unseal decrypts what seal produced for the same project and purpose.
func (s *Server) unseal(project, purpose string, sealed []byte) ([]byte, error) {
	a, err := s.aead()
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	if len(sealed) < 1+a.NonceSize() || sealed[0] != sealVersion {
		return nil, errors.New("unseal: unknown sealed format")
	}
	n := 1 + a.NonceSize()
	plain, err := a.Open(nil, sealed[1:n], sealed[n:], []byte(project+"\x00"+purpose))
	if err != nil {
		return nil, fmt.Errorf("unseal %s of project %s: %w", purpose, project, err)
	}
	return plain, nil
}
