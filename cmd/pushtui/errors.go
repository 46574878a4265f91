package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// explain turns an error into one line that says what went wrong and what
// to do about it.
func explain(err error, server string) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return explainAnswer(pe, server)
	}
	if status, ok := client.NotPushd(err); ok {
		return notPushd(server, status)
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach pushd at %s: connection refused; start it with \"pushd serve\", or point --server (or PUSH_SERVER) at it", server)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot find the host of %s (%s); check --server (or PUSH_SERVER)", server, dnsErr.Err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("pushd at %s did not answer in time; check that it is running and reachable", server)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("cannot talk to pushd at %s: %v; check --server (or PUSH_SERVER)", server, ue.Err)
	}
	return err.Error()
}

// explainAnswer explains an error answer from the server. An answer
// without pushd's error body is not quoted: it is some other server's page.
func explainAnswer(pe *protocol.Error, server string) string {
	msg := strings.TrimSuffix(pe.Message, ".")
	if pe.Code == "" {
		msg = statusLine(pe.Status)
	}
	switch {
	case pe.Status == http.StatusUnauthorized:
		return fmt.Sprintf("%s: %s; pass --token (or set PUSH_TOKEN)", server, msg)
	case pe.Status == http.StatusTooManyRequests:
		if d := pe.RetryAfter; d > 0 {
			return fmt.Sprintf("the server is busy (%s); try again in %s", msg, d.Round(time.Second))
		}
		return fmt.Sprintf("the server is busy (%s); try again in a moment", msg)
	case pe.Code == "":
		return notPushd(server, pe.Status)
	}
	return msg
}

// notPushd explains an answer that did not come from pushd (see
// client.NotPushd).
func notPushd(server string, status int) string {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Sprintf("%s answered %s without pushd's error body: a proxy in front of pushd that cannot reach it, or not pushd at all; check --server (or PUSH_SERVER)", server, statusLine(status))
	}
	return fmt.Sprintf("%s does not look like pushd (it answered an API request with %s, not pushd's JSON); check --server (or PUSH_SERVER)", server, statusLine(status))
}

// statusLine is "404 Not Found".
func statusLine(status int) string {
	if text := http.StatusText(status); text != "" {
		return fmt.Sprintf("%d %s", status, text)
	}
	return fmt.Sprint(status)
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
