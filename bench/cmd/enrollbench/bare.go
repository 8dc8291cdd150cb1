package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
)

// cmdBareServer serves the status route with a bare echo handler that
// returns a constant, pre-encoded body: the ceiling the real handler is
// compared against (same echo, same net/http server settings, no auth, no
// lookup, no encoding). With -verify-jwt it verifies the token first, with
// the service's own verifier: how much of the gap is authentication.
func cmdBareServer(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	bodyFile := fs.String("body", "", "file holding the JSON body to answer")
	verify := fs.Bool("verify-jwt", false, "verify the request's JWT first, as the real server does (jwtauth, HS256)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var verifier *jwtauth.Verifier
	if *verify {
		cfg := jwtauth.DefaultConfig()
		cfg.Secrets, cfg.Issuers, cfg.Audiences = []string{benchSecret}, []string{benchIssuer}, []string{benchAudience}
		v, err := jwtauth.New(cfg, jwtauth.Options{})
		if err != nil {
			return err
		}
		defer v.Close()
		verifier = v
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/api/mobile/:version/users/:username/enrollments_status/", func(c echo.Context) error {
		if verifier != nil {
			tok, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "JWT ")
			if !ok {
				return c.NoContent(http.StatusUnauthorized)
			}
			if _, err := verifier.Verify(c.Request().Context(), tok); err != nil {
				return c.NoContent(http.StatusUnauthorized)
			}
		}
		return c.JSONBlob(http.StatusOK, body)
	})
	e.GET("/readyz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := httpapi.NewHTTPServer(httpapi.DefaultConfig(), e, nil)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; srv.Close() }()
	if err := srv.Serve(httpapi.JSONErrorListener(ln)); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
