package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runProbe checks an endpoint of a running instance: a container
// HEALTHCHECK for images without curl.
func runProbe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	url, timeout := "http://127.0.0.1:8080/healthz", 3*time.Second
	_, err := opsFlags("probe", "probe [--url URL] [--timeout D]\n\nExit 0 when URL answers 200, 1 otherwise (a container health check).", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&url, "url", url, "URL to check")
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for the answer")
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
