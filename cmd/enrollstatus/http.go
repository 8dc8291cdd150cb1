package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
)

// httpConfig maps the service configuration onto the HTTP API's.
func (c *Config) httpConfig() httpapi.Config {
	h := httpapi.DefaultConfig()
	h.Addr = c.HTTPAddr
	h.StaleLag = c.StaleLag
	h.AdminToken = c.AdminToken
	j := jwtauth.DefaultConfig()
	j.Secrets = c.JWTSecrets
	if c.JWTIssuer != "" {
		j.Issuers = []string{c.JWTIssuer}
	}
	j.Audiences = c.JWTAudience
	j.JWKS, j.JWKSFile, j.JWKSURL = c.JWKS, c.JWKSFile, c.JWKSURL
	j.Leeway = c.JWTLeeway
	h.JWT = j
	return h
}

func newHTTPServer(cfg *Config, statuses httpapi.Statuses, health httpapi.Health, reg *prometheus.Registry, log *slog.Logger) (*httpapi.Server, error) {
	return httpapi.New(cfg.httpConfig(), httpapi.Deps{
		Statuses:   statuses,
		Health:     health,
		Registerer: reg,
		Gatherer:   reg,
		Logger:     log,
	})
}

// newAvroDecoder returns the event-bus decoder, with the schema registry
// when one is configured.
func newAvroDecoder(cfg *Config, log *slog.Logger, reg prometheus.Registerer) (*consumer.AvroDecoder, error) {
	return consumer.NewAvroDecoder(consumer.AvroOptions{
		RegistryURL: cfg.SchemaRegistryURL,
		Logger:      log.With("component", "avro"),
		Registerer:  reg,
	})
}
