package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// certLoader holds the certificate pushd serves TLS with and loads it again
// from its files on demand (on SIGHUP), so a renewed certificate needs no
// restart. Connections made before a reload keep the certificate they
// began with.
type certLoader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// newCertLoader loads the certificate and key, PEM files; the certificate
// file may hold the chain after the leaf.
func newCertLoader(certFile, keyFile string) (*certLoader, error) {
	c := &certLoader{certFile: certFile, keyFile: keyFile}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload loads the files again and serves the new certificate from now on;
// on an error the one served so far stays. It returns the new leaf.
func (c *certLoader) reload() (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil {
		return nil, fmt.Errorf("--tls-cert %s: no certificate", c.certFile)
	}
	c.cur.Store(&cert)
	return cert.Leaf, nil
}

// config is the server's TLS configuration: TLS 1.2 or newer, HTTP/2 and
// HTTP/1.1 offered (a WebSocket upgrade takes HTTP/1.1; see serve).
func (c *certLoader) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// describeCert names a certificate in logs: its subject, names and expiry.
func describeCert(leaf *x509.Certificate) []any {
	return []any{"subject", leaf.Subject.String(), "dns", leaf.DNSNames, "serial", leaf.SerialNumber.String(),
		"expires", leaf.NotAfter.UTC().Format(time.RFC3339)}
}
