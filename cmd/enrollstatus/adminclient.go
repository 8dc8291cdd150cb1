package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// adminCall sends a request to a running instance's admin endpoint with its
// admin token and returns the response if its status is want; otherwise it
// closes it and returns an error quoting the instance's answer.
func adminCall(ctx context.Context, method, url, token string, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s %s", method, url, resp.Status, body)
	}
	return resp, nil
}
