package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/pushd/push/server"
)

// idpOptions are serve's flags for an identity provider's tokens.
type idpOptions struct {
	p server.IdentityProvider
}

func (o *idpOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.p.JWKS, "auth-jwks", "", "take the RS256, ES256 and EdDSA tokens of an identity provider: its JWK Set, an https URL or a file")
	f.StringVar(&o.p.Issuer, "auth-issuer", "", "with --auth-jwks: the iss the tokens must have")
	f.StringVar(&o.p.Audience, "auth-audience", "", "with --auth-jwks: an aud the tokens must have")
	f.StringVar(&o.p.Claims.User, "auth-claim-user", "sub", "with --auth-jwks: the claim that names the user (a dotted path reaches into objects)")
	f.StringVar(&o.p.Claims.Rooms, "auth-claim-rooms", "rooms", "with --auth-jwks: the claim that lists the rooms (names or patterns; a list, or a string separated by spaces)")
	f.StringVar(&o.p.Claims.Publish, "auth-claim-publish", "publish", `with --auth-jwks: the claim that allows posting: "claim" (true) or "claim=value" (holds value, as roles=chat-writer)`)
	f.StringVar(&o.p.Claims.Tasks, "auth-claim-tasks", "tasks", `with --auth-jwks: the claim that allows starting, reporting on and cancelling tasks, as for --auth-claim-publish`)
	f.StringVar(&o.p.Claims.Admin, "auth-claim-admin", "admin", `with --auth-jwks: the claim that gives the admin right (every task; the operators' stats), as for --auth-claim-publish`)
	f.DurationVar(&o.p.Refresh, "auth-jwks-refresh", 15*time.Minute, "with --auth-jwks: how often the keys are fetched again (also at once for a token of an unknown key, at most every 10 s)")
}

// check refuses the provider's flags without --auth-jwks.
func (o *idpOptions) check(changed func(string) bool) error {
	if o.p.JWKS != "" {
		if o.p.Refresh <= 0 {
			return usagef("--auth-jwks-refresh %s: give a positive duration, e.g. 15m", o.p.Refresh)
		}
		return nil
	}
	for _, name := range []string{"auth-issuer", "auth-audience", "auth-claim-user", "auth-claim-rooms", "auth-claim-publish", "auth-claim-tasks", "auth-claim-admin", "auth-jwks-refresh"} {
		if changed(name) {
			return usagef("--%s applies to the tokens of an identity provider: give --auth-jwks too", name)
		}
	}
	return nil
}
