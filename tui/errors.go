package tui

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// maxErrText bounds the text of an error this package does not recognise.
const maxErrText = 120

// errText says in a few words what went wrong, for a person to act on:
// "server unreachable (connection refused)", "the server closed the
// connection", "timed out". An error answer from the server keeps the
// server's own message. Every screen and the plain status lines show errors
// through it, so the same failure reads the same everywhere.
func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return answerText(pe)
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	var ce *client.CloseError
	if errors.As(err, &ce) {
		return closedText(ce)
	}
	msg := err.Error()
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "server unreachable (connection refused)"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "server unreachable (no such host " + clean(dnsErr.Name, false) + ")"
		}
		return "server unreachable (name lookup failed)"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "server unreachable (no route to host)"
	case errors.Is(err, syscall.ENETUNREACH):
		return "server unreachable (network unreachable)"
	case errors.Is(err, client.ErrQuiet):
		return "timed out (nothing from the server)"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timed out"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE):
		return "the server closed the connection"
	}
	if text, ok := tlsText(err); ok {
		return text
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error() // not the method and URL in front
	}
	msg = clean(msg, false)
	if r := []rune(msg); len(r) > maxErrText {
		msg = string(r[:maxErrText-1]) + "…"
	}
	return msg
}

// answerText is an error answer: the server's message, or for an answer
// that is not pushd's (a proxy's page) its status.
func answerText(pe *protocol.Error) string {
	if pe.Code == "" {
		return fmt.Sprintf("unexpected answer from the server (%d %s)", pe.Status, http.StatusText(pe.Status))
	}
	if msg := strings.TrimSuffix(clean(pe.Message, false), "."); msg != "" {
		return msg
	}
	return fmt.Sprintf("the server answered %d %s", pe.Status, http.StatusText(pe.Status))
}

// closedText is the server ending a stream on purpose (a WebSocket close
// frame or an SSE close event; see PROTOCOL.md).
func closedText(ce *client.CloseError) string {
	switch ce.Reason {
	case protocol.CloseShutdown:
		return "the server is restarting"
	case protocol.CloseUnavailable:
		return "the server cannot reach its store for now"
	case protocol.CloseSlowConsumer:
		return "the server dropped this connection for falling behind"
	case "", protocol.CloseInternal:
		return "the server closed the connection"
	}
	// A refusal (1008) carries the server's own message as its reason.
	text := ce.Reason
	if ce.Message != "" {
		text = ce.Message
	}
	return "the server closed the connection: " + clean(text, false)
}

// tlsText recognises TLS failures.
func tlsText(err error) (string, bool) {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return "TLS: the server's certificate is not trusted", true
	case errors.As(err, &hostname):
		return "TLS: the server's certificate is for another host", true
	case errors.As(err, &invalid):
		return "TLS: the server's certificate is not valid", true
	case errors.As(err, &verify):
		return "TLS: the server's certificate could not be verified", true
	case errors.As(err, &header):
		return "TLS: the server does not speak TLS (try http://)", true
	}
	return "", false
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
