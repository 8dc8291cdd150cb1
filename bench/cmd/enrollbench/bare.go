package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
	"github.com/enrollstatus/enrollstatus/projection"
)

// cmdBareServer serves the status route with a bare echo handler that
// returns a constant, pre-encoded body: the ceiling the real handler is
// compared against (same echo, same net/http server settings, no auth, no
// lookup, no encoding). With -verify-jwt it verifies the token first, with
// the service's own verifier: how much of the gap is authentication. With
// -contract it serves the service's own HTTP API (authentication, the
// contract's headers, encoding, metrics) over a store that answers the
// body's list for every user without looking anything up: the ceiling of
// the real server whatever its store, and how much of the gap is the
// lookup.
func cmdBareServer(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	bodyFile := fs.String("body", "", "file holding the JSON body to answer")
	verify := fs.Bool("verify-jwt", false, "verify the request's JWT first, as the real server does (jwtauth, HS256)")
	contract := fs.Bool("contract", false, "serve the service's own HTTP API over a store that answers -body's list for every user, without a lookup")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *contract {
		return serveContract(*addr, *bodyFile)
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

// serveContract serves the service's HTTP API (httpapi.Server, as serve and
// demo build it) over constantStatuses until SIGTERM or SIGINT.
func serveContract(addr, bodyFile string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	var answer []struct {
		CourseID       string  `json:"course_id"`
		CourseName     *string `json:"course_name"`
		RecentlyActive bool    `json:"recently_active"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("%s: %w", bodyFile, err)
	}
	var st constantStatuses
	for _, a := range answer {
		s := projection.Status{CourseID: a.CourseID, RecentlyActive: a.RecentlyActive, HasCourseName: a.CourseName != nil}
		if a.CourseName != nil {
			s.CourseName = *a.CourseName
		}
		st.list = append(st.list, s)
	}
	now := time.Now()
	st.fresh = projection.Freshness{LastEventTime: now, CommittedAt: now, Applied: 1}

	cfg := httpapi.DefaultConfig()
	cfg.JWT = jwtauth.DefaultConfig()
	cfg.JWT.Secrets, cfg.JWT.Issuers, cfg.JWT.Audiences = []string{benchSecret}, []string{benchIssuer}, []string{benchAudience}
	reg := prometheus.NewRegistry()
	srv, err := httpapi.New(cfg, httpapi.Deps{Statuses: st, Health: readyHealth{}, Registerer: reg, Gatherer: reg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// constantStatuses is a store whose every user has the same list.
type constantStatuses struct {
	list  []projection.Status
	fresh projection.Freshness
}

func (c constantStatuses) StatusFunc(_ context.Context, _ projection.StatusQuery, fn func([]projection.Status, projection.Freshness) error) error {
	return fn(c.list, c.fresh)
}

// readyHealth is a service caught up with its brokers.
type readyHealth struct{}

func (readyHealth) Ready() error                          { return nil }
func (readyHealth) Lag() (messages int64, connected bool) { return 0, true }
