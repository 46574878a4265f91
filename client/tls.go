package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// WithRootCAs makes the client verify https and wss servers against pool
// instead of the system's roots (see RootsWithFile for a private CA). It
// gives the client an HTTP client of its own, as WithHTTPClient does: use
// one or the other, and with WithHTTPClient set the roots on its
// transport.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(c *Client) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.hc = &http.Client{Transport: tr}
	}
}

// RootsWithFile returns the system's roots and the PEM certificates in
// file: what a client needs to reach a server whose certificate a private
// CA signed (as well as any other).
func RootsWithFile(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("CA file " + file + ": no PEM certificate in it")
	}
	return pool, nil
}
