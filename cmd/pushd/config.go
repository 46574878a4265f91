package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
)

// serve's settings come from three places, each beating the next: flags on
// the command line; the environment, PUSHD_ and the flag's name in upper
// case with _ for - (PUSHD_AUTH_SECRET_FILE for --auth-secret-file); and a
// TOML file (--config FILE, or PUSHD_CONFIG), whose keys are the flags'
// names:
//
//	addr = "0.0.0.0:8080"
//	auth-secret-file = "/etc/pushd/secret"
//	allow-origin = ["app.example.com"]
//	heartbeat = "15s"
//
// The file and the environment set the flags the command line left alone,
// so every default is the flag's, written once. A key of the file that is
// no flag is an error that names it.

// Where a setting came from, for --print-config and error messages.
const (
	fromDefault = "default"
	fromFlag    = "flag"
)

// notInFile are the flags that only the command line gives.
var notInFile = map[string]bool{"config": true, "print-config": true, "help": true}

// configLayers applies the environment and the config file to the flags of
// fs not given on the command line, and returns where each flag's value
// came from. Mistakes in the file, or values a flag does not take, are
// usage errors; a file that cannot be read is not.
func configLayers(fs *pflag.FlagSet, configFile string, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	sources := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		sources[f.Name] = fromDefault
		if f.Changed {
			sources[f.Name] = fromFlag
		}
	})
	if configFile == "" {
		configFile, _ = lookupEnv("PUSHD_CONFIG")
	}
	values := map[string][]string{} // what to set, by flag
	if configFile != "" {
		file, err := readConfigFile(fs, configFile)
		if err != nil {
			return nil, err
		}
		for name, v := range file {
			values[name] = v
			if sources[name] != fromFlag {
				sources[name] = "file " + configFile
			}
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if notInFile[f.Name] {
			return
		}
		env := envName(f.Name)
		if v, ok := lookupEnv(env); ok && err == nil && sources[f.Name] != fromFlag {
			values[f.Name] = []string{v}
			sources[f.Name] = "env " + env
			if isSlice(f) {
				values[f.Name], err = splitList(v)
				if err != nil {
					err = usagef("%s: %v", env, err)
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if sources[name] == fromFlag {
			delete(values, name)
			continue
		}
		if err := setFlag(fs.Lookup(name), values[name]); err != nil {
			return nil, usagef("%s: %v", sources[name], err)
		}
	}
	return sources, nil
}

// envName is the environment variable of a flag: PUSHD_AUTH_SECRET_FILE
// for auth-secret-file.
func envName(flag string) string {
	return "PUSHD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// readConfigFile reads a TOML config file into the values of the flags it
// sets, checking each against the flag's type.
func readConfigFile(fs *pflag.FlagSet, file string) (map[string][]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, usagef("config file %s, line %d, column %d: %v", file, row, col, de)
		}
		return nil, usagef("config file %s: %v", file, err)
	}
	out := map[string][]string{}
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		f := fs.Lookup(key)
		if f == nil || notInFile[key] {
			return nil, usagef("config file %s: unknown key %q; the keys are pushd serve's flags without the dashes", file, key)
		}
		v, err := tomlValue(f, doc[key])
		if err != nil {
			return nil, usagef("config file %s: %s: %v", file, key, err)
		}
		out[key] = v
	}
	return out, nil
}

// tomlValue turns a TOML value into the text a flag parses, refusing a
// value of the wrong type: a table, a number for a duration, a list for a
// flag that takes one value.
func tomlValue(f *pflag.Flag, v any) ([]string, error) {
	typ := f.Value.Type()
	switch v := v.(type) {
	case string:
		if isSlice(f) {
			return splitList(v)
		}
		switch typ {
		case "string", "duration":
			return []string{v}, nil
		}
	case bool:
		if typ == "bool" {
			return []string{strconv.FormatBool(v)}, nil
		}
	case int64:
		switch typ {
		case "int", "int64", "float64":
			return []string{strconv.FormatInt(v, 10)}, nil
		case "duration":
			if v == 0 {
				return []string{"0s"}, nil
			}
			return nil, fmt.Errorf("write a duration as a string with its unit, such as \"%ds\"", v)
		}
	case float64:
		if typ == "float64" || (typ == "int" || typ == "int64") && v == math.Trunc(v) {
			return []string{strconv.FormatFloat(v, 'f', -1, 64)}, nil
		}
	case []any:
		if isSlice(f) {
			items := make([]string, len(v))
			for i, item := range v {
				s, ok := item.(string)
				if !ok {
					return nil, fmt.Errorf("item %d of the list is %T; want strings", i+1, item)
				}
				items[i] = s
			}
			return items, nil
		}
	case map[string]any:
		return nil, errors.New("a table; the keys are flags at the top of the file")
	}
	return nil, fmt.Errorf("%s %v does not fit: want %s", tomlType(v), v, flagTypeText(f))
}

// tomlType names a decoded TOML value's type for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "the string"
	case bool:
		return "the boolean"
	case int64, float64:
		return "the number"
	case []any:
		return "the list"
	case time.Time:
		return "the date"
	}
	return "the value"
}

// flagTypeText says what a flag takes, for messages.
func flagTypeText(f *pflag.Flag) string {
	switch typ := f.Value.Type(); {
	case isSlice(f):
		return `a list of strings, such as ["a", "b"]`
	case typ == "duration":
		return `a duration as a string, such as "10s"`
	case typ == "bool":
		return "true or false"
	case typ == "int" || typ == "int64":
		return "a whole number"
	case typ == "float64":
		return "a number"
	}
	return "a string"
}

// isSlice reports whether a flag takes a list.
func isSlice(f *pflag.Flag) bool {
	_, ok := f.Value.(pflag.SliceValue)
	return ok
}

// splitList splits a comma-separated list as the flag itself does.
func splitList(v string) ([]string, error) {
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	list := fs.StringSlice("l", nil, "")
	if err := fs.Set("l", v); err != nil {
		return nil, err
	}
	return *list, nil
}

// setFlag sets a flag to values: a list flag to all of them, another to
// the one.
func setFlag(f *pflag.Flag, values []string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		if err := sv.Replace(values); err != nil {
			return fmt.Errorf("--%s: %w", f.Name, err)
		}
		f.Changed = true
		return nil
	}
	if len(values) != 1 {
		return fmt.Errorf("--%s takes one value", f.Name)
	}
	if err := f.Value.Set(values[0]); err != nil {
		return fmt.Errorf("--%s %q: %w", f.Name, values[0], err)
	}
	f.Changed = true
	return nil
}

// secretFlags are the flags whose values --print-config masks.
var secretFlags = map[string]bool{"auth-secret": true}

// withSource adds to a usage error about a flag ("--history 0: ...")
// where that flag's value came from, when not from the command line.
func withSource(err error, sources map[string]string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "--") {
		return err
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(msg, "--"), " ")
	name = strings.TrimRight(name, ":,")
	if src := sources[name]; src != "" && src != fromFlag && src != fromDefault {
		return usagef("%s (set by %s)", msg, src)
	}
	return err
}

// printConfig writes the settings in effect as a config file that gives
// them, each with where it came from; secrets and the passwords in URLs
// are masked.
func printConfig(w io.Writer, fs *pflag.FlagSet, sources map[string]string) error {
	var b strings.Builder
	b.WriteString("# pushd serve: the settings in effect, each with where it came from\n# (default, flag, env VAR or file FILE); secrets are masked.\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if notInFile[f.Name] {
			return
		}
		fmt.Fprintf(&b, "%s = %s # %s\n", f.Name, tomlText(f), sources[f.Name])
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// tomlText is a flag's value as TOML, masked where it is secret.
func tomlText(f *pflag.Flag) string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		items := slices.Clone(sv.GetSlice())
		for i, item := range items {
			items[i] = strconv.Quote(maskURLs(item))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	v := f.Value.String()
	switch f.Value.Type() {
	case "bool", "int", "int64", "float64":
		return v
	}
	if secretFlags[f.Name] && v != "" {
		v = "********"
	}
	return strconv.Quote(maskURLs(v))
}

// maskURLs hides the passwords of the URLs in a comma-separated list
// (nats://user:pass@host), which would otherwise be printed in the clear.
func maskURLs(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			parts[i] = u.Redacted()
		} else if u.User.Username() != "" && u.Host != "" {
			// A token in place of the user name (nats://token@host).
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
