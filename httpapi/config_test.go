package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/httpapi"
)

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("defaults with a secret: %v", err)
	}
	if err := httpapi.DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "no key to verify tokens") {
		t.Fatalf("defaults without a key: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*httpapi.Config)
		want   string
	}{
		{"addr", func(c *httpapi.Config) { c.Addr = "8080" }, `Addr "8080" is not host:port`},
		{"read header timeout", func(c *httpapi.Config) { c.ReadHeaderTimeout = 0 }, "ReadHeaderTimeout is 0s"},
		{"read timeout", func(c *httpapi.Config) { c.ReadTimeout = -time.Second }, "ReadTimeout is -1s"},
		{"write timeout", func(c *httpapi.Config) { c.WriteTimeout = 0 }, "WriteTimeout is 0s"},
		{"idle timeout", func(c *httpapi.Config) { c.IdleTimeout = 0 }, "IdleTimeout is 0s"},
		{"header bytes", func(c *httpapi.Config) { c.MaxHeaderBytes = 100 }, "MaxHeaderBytes is 100"},
		{"URL bytes", func(c *httpapi.Config) { c.MaxURLBytes = 1 << 20 }, "MaxURLBytes is 1048576"},
		{"stale lag", func(c *httpapi.Config) { c.StaleLag = -1 }, "StaleLag is -1"},
		{"short admin token", func(c *httpapi.Config) { c.AdminToken = "hunter2" }, "AdminToken has 7 characters"},
		{"JWT", func(c *httpapi.Config) { c.JWT.Audiences = []string{" "} }, "Audiences[0] is blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v; want it to say %q", err, tt.want)
			}
			if _, err := httpapi.New(cfg, httpapi.Deps{Statuses: &fakeStore{}, Health: &fakeHealth{}}); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
	// Every fault is reported at once.
	cfg := testConfig()
	cfg.ReadTimeout, cfg.StaleLag = 0, -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ReadTimeout") || !strings.Contains(err.Error(), "StaleLag") {
		t.Fatalf("Validate = %v; want both faults", err)
	}
	if cfg.AdminToken != "" {
		t.Fatal("the admin endpoints are on by default")
	}
}
