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

// signToken returns an HS256 JWT shaped like the LMS's: the user in
// preferred_username, issuer and audience when given.
func signToken(secret, username, issuer, audience string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"preferred_username": username,
		"iat":                now.Unix(),
		"exp":                now.Add(ttl).Unix(),
	}
	if issuer != "" {
		claims["iss"] = issuer
	}
	if audience != "" {
		claims["aud"] = audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

func runToken(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var secrets, audience listFlag
	username, issuer, ttl := "", "", time.Hour
	fs.Var(&secrets, "jwt-secret", "HS256 secret (the first of a list is used)")
	fs.StringVar(&username, "username", username, "the user, as preferred_username")
	fs.StringVar(&issuer, "jwt-issuer", issuer, "issuer claim")
	fs.Var(&audience, "jwt-audience", "audience claim (the first of a list is used)")
	fs.DurationVar(&ttl, "ttl", ttl, "validity")
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
	tok, err := signToken(secrets[0], username, issuer, firstOr(audience, ""), ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
