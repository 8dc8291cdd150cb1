package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenSpec is what a token says.
type tokenSpec struct {
	Username, Issuer, Audience string // issuer and audience when not empty
	// Staff sets the administrator claim, the LMS's is_staff, which lifts
	// the mobile filter.
	Staff bool
	TTL   time.Duration
}

// signToken returns an HS256 JWT shaped like the LMS's: the user in
// preferred_username, issuer, audience and administrator when given.
func signToken(secret string, t tokenSpec) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"preferred_username": t.Username,
		"iat":                now.Unix(),
		"exp":                now.Add(t.TTL).Unix(),
	}
	if t.Issuer != "" {
		claims["iss"] = t.Issuer
	}
	if t.Audience != "" {
		claims["aud"] = t.Audience
	}
	if t.Staff {
		claims["administrator"] = true
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

func runToken(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var secrets, audience listFlag
	username, issuer, ttl, staff := "", "", time.Hour, false
	fs.Var(&secrets, "jwt-secret", "HS256 secret (the first of a list is used)")
	fs.StringVar(&username, "username", username, "the user, as preferred_username")
	fs.StringVar(&issuer, "jwt-issuer", issuer, "issuer claim")
	fs.Var(&audience, "jwt-audience", "audience claim (the first of a list is used)")
	fs.DurationVar(&ttl, "ttl", ttl, "validity")
	fs.BoolVar(&staff, "staff", staff, "global staff: the administrator claim true (the LMS's is_staff), which lifts the mobile filter")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: enrollstatus token --jwt-secret S --username U\n\nPrint an HS256 JWT like the LMS issues, to try the API.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if len(secrets) == 0 || username == "" {
		return usageError{errors.New("token needs --jwt-secret and --username")}
	}
	tok, err := signToken(secrets[0], tokenSpec{Username: username, Issuer: issuer, Audience: firstOr(audience, ""), Staff: staff, TTL: ttl})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
