package main

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pushd/push/internal/deploytest"
)

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pushd.toml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// setting returns the line of --print-config's output for a flag.
func setting(t *testing.T, out, flag string) string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, flag+" = ") {
			return line
		}
	}
	t.Fatalf("--print-config has no %s:\n%s", flag, out)
	return ""
}

// Flags beat the environment, which beats the config file; every flag can
// come from either, and --print-config says where each setting came from.
func TestConfigLayers(t *testing.T) {
	file := writeConfig(t, `
addr = "127.0.0.1:9999"
history = 500
heartbeat = "5s"
allow-origin = ["app.example.com", "*.example.org"]
publish-rate = 2.5
web = false
auth-secret = "0123456789abcdef0123"
nats = "nats://bob:hunter2@127.0.0.1:4222"
`)
	t.Setenv("PUSHD_HISTORY", "700")
	t.Setenv("PUSHD_MAX_LAG", "99")
	t.Setenv("PUSHD_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")
	code, out, errOut := execute(t, "serve", "--config", file, "--heartbeat", "7s", "--print-config")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`addr = "127.0.0.1:9999" # file ` + file,
		`history = 700 # env PUSHD_HISTORY`,
		`heartbeat = "7s" # flag`,
		`max-lag = 99 # env PUSHD_MAX_LAG`,
		`trusted-proxies = ["127.0.0.1", "10.0.0.0/8"] # env PUSHD_TRUSTED_PROXIES`,
		`allow-origin = ["app.example.com", "*.example.org"] # file ` + file,
		`publish-rate = 2.5 # file`,
		`web = false # file`,
		`auth-secret = "********" # file`,
		`nats = "nats://bob:xxxxx@127.0.0.1:4222" # file`,
		`write-timeout = "10s" # default`,
	} {
		flag, _, _ := strings.Cut(want, " = ")
		if got := setting(t, out, flag); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q; want %q", flag, got, want)
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "0123456789abcdef0123") {
		t.Errorf("--print-config shows a secret:\n%s", out)
	}
	// The file can be named by the environment too.
	t.Setenv("PUSHD_CONFIG", file)
	if code, out, _ := execute(t, "serve", "--print-config"); code != exitOK || !strings.Contains(setting(t, out, "addr"), "127.0.0.1:9999") {
		t.Fatalf("PUSHD_CONFIG: exit %d\n%s", code, out)
	}
}

// Mistakes in the file or the environment are usage errors that say where
// they are.
func TestConfigMistakes(t *testing.T) {
	for _, tc := range []struct {
		file, env, want string
	}{
		{"adr = \"127.0.0.1:1\"\n", "", `unknown key "adr"`},
		{"heartbeat = 5\n", "", `heartbeat: write a duration as a string with its unit, such as "5s"`},
		{"history = \"many\"\n", "", "history: the string many does not fit: want a whole number"},
		{"[nats]\nurl = \"x\"\n", "", "nats: a table"},
		{"addr = \n", "", "line 1"},
		{"config = \"other.toml\"\n", "", `unknown key "config"`},
		{"", "PUSHD_HISTORY=0", "--history 0: keep at least 1 event per stream (set by env PUSHD_HISTORY)"},
		{"history = 0\n", "", "--history 0: keep at least 1 event per stream (set by file"},
		{"", "PUSHD_HEARTBEAT=soon", `env PUSHD_HEARTBEAT: --heartbeat "soon"`},
	} {
		args := []string{"serve", "--store", "memory"}
		if tc.file != "" {
			args = append(args, "--config", writeConfig(t, tc.file))
		}
		if k, v, ok := strings.Cut(tc.env, "="); ok {
			t.Setenv(k, v)
		}
		code, _, errOut := execute(t, append(args, "--print-config")...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("file %q env %q: exit %d %q; want 2 saying %q", tc.file, tc.env, code, errOut, tc.want)
		}
		if k, _, ok := strings.Cut(tc.env, "="); ok {
			os.Unsetenv(k)
		}
	}
	if code, _, errOut := execute(t, "serve", "--config", filepath.Join(t.TempDir(), "missing.toml")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("a missing config file: exit %d %q; want 1 saying so", code, errOut)
	}
}

// A server started from a config file runs as the file says.
func TestServeFromAConfigFile(t *testing.T) {
	file := writeConfig(t, "store = \"memory\"\nauth-secret-file = \""+secretFile(t)+"\"\n")
	p := startPushd(t, "--config", file)
	if a := p.Get(t, "/v1/rooms/lobby/presence"); a.Status != http.StatusUnauthorized {
		t.Fatalf("a request without a token to a server whose config file has a secret: %d; want 401", a.Status)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := execute(t, args...)
		if code != exitOK || !strings.HasPrefix(out, "pushd ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "(commit ") {
			t.Errorf("pushd %v: exit %d %q %q; want the version, commit and Go version", args, code, out, errOut)
		}
	}
}

// The config file and the pushd serve commands of README's "Deploying"
// section are taken as they stand.
func TestReadmeDeployingSettings(t *testing.T) {
	md, err := deploytest.Readme(".")
	if err != nil {
		t.Fatal(err)
	}
	file, err := deploytest.ReadmeBlock(md, "### Settings: flags, environment, a config file", "toml", 0)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := execute(t, "serve", "--config", writeConfig(t, file), "--print-config"); code != exitOK || !strings.Contains(out, `trusted-proxies = ["127.0.0.1"] # file`) {
		t.Fatalf("README's config file: exit %d %s\n%s", code, errOut, out)
	}
	for _, section := range []string{"### Behind nginx", "### Tokens from an identity provider"} {
		block, err := deploytest.ReadmeBlock(md, section, "sh", 0)
		if err != nil {
			t.Fatal(err)
		}
		line := strings.ReplaceAll(block, "\\\n", " ")
		args := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "pushd "))
		for i, a := range args {
			if a == "/etc/pushd/secret" {
				args[i] = secretFile(t)
			}
		}
		if code, _, errOut := execute(t, append(args, "--print-config")...); code != exitOK {
			t.Errorf("README's %s command %v: exit %d %s", section, args, code, errOut)
		}
	}
}
