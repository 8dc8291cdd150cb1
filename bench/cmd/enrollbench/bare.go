package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/httpapi"
)

// cmdBareServer serves the status route with a bare echo handler that
// returns a constant, pre-encoded body: the ceiling the real handler is
// compared against (same echo, same net/http server settings, no auth, no
// lookup, no encoding).
func cmdBareServer(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	bodyFile := fs.String("body", "", "file holding the JSON body to answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/api/mobile/:version/users/:username/enrollments_status/", func(c echo.Context) error {
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
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
