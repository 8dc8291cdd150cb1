package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
	"github.com/enrollstatus/enrollstatus/projection"
)

// Statuses reads the projection.
type Statuses interface {
	// StatusFunc calls fn with q.Username's enrollments status at q.Now
	// (the store applies window/limit/mobile policy, the mobile filter
	// off for staff), and how fresh the projection read was. An unknown
	// user is an empty list, not an error. q.Username is the one in the
	// URL, decoded; it equals the token's username up to case, as the
	// LMS's MySQL collation would find it. The
	// statuses are lent: valid until fn returns, and not kept by fn, so that
	// the store need not copy them out of its pages. fn's error is
	// StatusFunc's.
	StatusFunc(ctx context.Context, q projection.StatusQuery, fn func([]projection.Status, projection.Freshness) error) error
}

// Health is the state of the consumer and the store.
type Health interface {
	// Ready returns nil when the service may take traffic (store open,
	// start-up catch-up done), else why not.
	Ready() error
	// Lag is the live consumer lag (sum over partitions) and whether the
	// broker is reachable. It is called on every status answer: it must be
	// cheap and must not block.
	Lag() (messages int64, connected bool)
}

// Deps are what the server reads from and reports to.
type Deps struct {
	Statuses Statuses // required
	Health   Health   // required
	// Registerer receives the HTTP metrics (MetricRequests,
	// MetricDuration). Nil: they are kept but not exported.
	Registerer prometheus.Registerer
	// Gatherer is served at /metrics. Nil: /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Logger receives server faults and JWK set fetch failures; at debug,
	// why tokens were refused. Tokens are never logged. Nil: discarded.
	Logger *slog.Logger
	// Now is the clock of status computations and token checks. Nil:
	// time.Now.
	Now func() time.Time
	// JWKSClient fetches Config.JWT.JWKSURL. Nil: a client with
	// Config.JWT.JWKSTimeout.
	JWKSClient *http.Client
}

// AdminPrefix is where Admin's routes live.
const AdminPrefix = "/admin"

// Server is the HTTP API: the LMS's enrollments-status route, health,
// metrics, and admin routes mounted by others.
type Server struct {
	cfg      Config
	statuses Statuses
	health   Health
	gatherer prometheus.Gatherer
	log      *slog.Logger
	now      func() time.Time
	verifier *jwtauth.Verifier
	metrics  *metrics
	fresh    freshHeaders
	echo     *echo.Echo
	admin    *echo.Group
	http     *http.Server
}

// New validates cfg and builds the server. With a JWK set URL configured, it
// fetches the set once (a failure is logged, not fatal) and refreshes it in
// the background until Shutdown.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Statuses == nil || deps.Health == nil {
		return nil, errors.New("httpapi: Deps.Statuses and Deps.Health are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	verifier, err := jwtauth.New(cfg.JWT, jwtauth.Options{Logger: deps.Logger, Now: deps.Now, Client: deps.JWKSClient})
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		verifier.Close()
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		statuses: deps.Statuses,
		health:   deps.Health,
		gatherer: deps.Gatherer,
		log:      deps.Logger,
		now:      deps.Now,
		verifier: verifier,
		metrics:  m,
		echo:     echo.New(),
	}
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.Logger.SetOutput(echoLog{deps.Logger})
	s.echo.HTTPErrorHandler = s.handleError
	s.routes()
	s.http = NewHTTPServer(cfg, http.HandlerFunc(s.serveHTTP), deps.Logger)
	return s, nil
}

// routes is every route the service answers.
func (s *Server) routes() {
	e := s.echo
	e.Use(s.middleware)

	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, "/healthz", s.healthz)
	e.Match(getHead, "/readyz", s.readyz)
	e.Match(getHead, "/openapi.yaml", s.openapi)
	if s.gatherer != nil {
		e.Match(getHead, "/metrics", echo.WrapHandler(promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		})))
	}

	// The view routes by itself, on the decoded path, like Django: see
	// matchStatus. It takes every method, including ones echo does not
	// know, so that DRF's order of checks holds (401 before 405).
	e.Any(mobilePrefix+"*", s.mobile)
	e.RouteNotFound(mobilePrefix+"*", s.mobile)

	s.admin = e.Group(AdminPrefix, RequireAdmin(s.cfg.AdminToken))
}

// Admin is the group of admin routes, under AdminPrefix and guarded by
// RequireAdmin with Config.AdminToken. Mount routes on it before serving:
//
//	srv.Admin().POST("/rebuild", rebuild)
//
// A handler returning an *Error answers its Code and Detail; any other error
// is a logged 500.
func (s *Server) Admin() *echo.Group { return s.admin }

// Handler is the server's http.Handler, for tests and for callers that run
// their own http.Server.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve answers connections from ln until Shutdown, then returns nil. Even
// the requests net/http refuses by itself get a JSON 4xx (see
// JSONErrorListener).
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(JSONErrorListener(ln)); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpapi: serve: %w", err)
	}
	return nil
}

// ListenAndServe listens on Config.Addr and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	return s.Serve(ln)
}

// Shutdown stops accepting connections, waits for requests under way until
// ctx is done, and stops the JWK set refresh. It may be called without Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.verifier.Close()
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("httpapi: shutdown: %w", err)
	}
	return nil
}

// NewHTTPServer returns an http.Server for h with cfg's timeouts and limits,
// so that slow or oversized clients cannot exhaust it. Its MaxHeaderBytes is
// twice cfg.MaxHeaderBytes: requests between the two get the handler's 431,
// larger ones net/http's own (in JSON when served on a JSONErrorListener).
// Go's default handling of "OPTIONS *" is off, so the handler answers it
// (404).
func NewHTTPServer(cfg Config, h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Addr:                         cfg.Addr,
		Handler:                      h,
		ReadHeaderTimeout:            cfg.ReadHeaderTimeout,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxHeaderBytes:               2 * cfg.MaxHeaderBytes,
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// echoLog carries echo's own rare warnings to the slog logger.
type echoLog struct{ l *slog.Logger }

func (w echoLog) Write(p []byte) (int, error) {
	w.l.Warn("echo: " + strings.TrimSpace(string(p)))
	return len(p), nil
}
