package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

// keyedStart starts a task with an Idempotency-Key and returns the
// status and the task.
func keyedStart(t *testing.T, url, body, key string) (int, protocol.Task) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/v1/tasks", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tk protocol.Task
	_ = json.NewDecoder(resp.Body).Decode(&tk)
	return resp.StatusCode, tk
}

// A start's idempotency key outlives a crash of its server (kill -9) on
// the bolt store: the start sent again afterwards starts nothing.
func TestTaskKeyAcrossKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	const body = `{"kind":"external","name":"nightly","total":10}`
	status, first := keyedStart(t, p.URL, body, "nightly:2026-12-01")
	if status != http.StatusCreated {
		t.Fatalf("start: %d", status)
	}
	p.Kill(t)

	p = startPushd(t, "--data", data)
	status, again := keyedStart(t, p.URL, body, "nightly:2026-12-01")
	if status != http.StatusOK || again.ID != first.ID {
		t.Fatalf("the start again after kill -9: %d, task %s; want 200 and %s", status, again.ID, first.ID)
	}
	if status, _ := keyedStart(t, p.URL, `{"kind":"external","name":"other"}`, "nightly:2026-12-01"); status != http.StatusConflict {
		t.Fatalf("another start with the key after kill -9: %d; want 409", status)
	}
}

// pushd token --admin mints a token with the admin claim.
func TestTokenAdmin(t *testing.T) {
	secret := writeSecret(t)
	for _, admin := range []bool{false, true} {
		args := []string{"token", "--auth-secret-file", secret, "--user", "root"}
		if admin {
			args = append(args, "--admin")
		}
		code, stdout, stderr := execute(t, args...)
		parts := strings.Split(strings.TrimSpace(stdout), ".")
		if code != exitOK || len(parts) != 3 {
			t.Fatalf("pushd %v: exit %d, %q %q", args, code, stdout, stderr)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			Admin bool `json:"admin"`
		}
		if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Admin != admin {
			t.Errorf("pushd %v: claims %s; want admin %v", args, payload, admin)
		}
	}
}
