package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

// authOptions are the flags that give the token secret.
type authOptions struct {
	secretValue string
	secretFile  string
}

func (a *authOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&a.secretValue, "auth-secret", "", "secret for HS256 tokens; every request then needs a token (prefer --auth-secret-file: flags show in ps)")
	f.StringVar(&a.secretFile, "auth-secret-file", "", "file holding the token secret")
}

// secret returns the configured secret, or nil for none. Mistakes in the
// flags are usage errors; a file that cannot be read or holds too short a
// secret is not.
func (a *authOptions) secret() ([]byte, error) {
	switch {
	case a.secretValue != "" && a.secretFile != "":
		return nil, usagef("give --auth-secret or --auth-secret-file, not both")
	case a.secretFile != "":
		b, err := os.ReadFile(a.secretFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-secret-file: %w", err)
		}
		b = bytes.TrimSpace(b)
		if len(b) < 16 {
			return nil, fmt.Errorf("--auth-secret-file %s: the secret must be at least 16 bytes", a.secretFile)
		}
		return b, nil
	case a.secretValue != "":
		if len(a.secretValue) < 16 {
			return nil, usagef("--auth-secret: the secret must be at least 16 bytes")
		}
		return []byte(a.secretValue), nil
	}
	return nil, nil
}
