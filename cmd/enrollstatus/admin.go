package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// inspection is what `enrollstatus inspect` prints, from a data directory or
// from a running instance's /admin/inspect.
type inspection struct {
	Stats      store.Stats      `json:"stats"`
	LastEvent  time.Time        `json:"last_event_time"`
	Committed  time.Time        `json:"committed_at"`
	Applied    uint64           `json:"messages_applied"`
	Digest     string           `json:"digest,omitempty"`
	Offsets    []offsetView     `json:"offsets"`
	Partitions []partitionView  `json:"partitions,omitempty"`
	User       *projection.User `json:"user,omitempty"`
}

type offsetView struct {
	Partition string `json:"partition"`
	Next      int64  `json:"next_offset"`
}

type partitionView struct {
	Partition string `json:"partition"`
	Next      int64  `json:"next_offset"`
	End       int64  `json:"end_offset"`
	Lag       int64  `json:"lag"`
	Failed    string `json:"failed,omitempty"`
}

// inspect reads a store; digest computes the content checksum (reads
// everything).
func inspect(st *store.Store, username string, userID int64, digest bool) (*inspection, error) {
	var out inspection
	var err error
	if out.Stats, err = st.Stats(); err != nil {
		return nil, err
	}
	f, err := st.Freshness()
	if err != nil {
		return nil, err
	}
	out.LastEvent, out.Committed, out.Applied = f.LastEventTime, f.CommittedAt, f.Applied
	offs, err := st.Offsets()
	if err != nil {
		return nil, err
	}
	for p, next := range offs {
		out.Offsets = append(out.Offsets, offsetView{p.String(), next})
	}
	sortOffsets(out.Offsets)
	if digest {
		d, err := st.Digest()
		if err != nil {
			return nil, err
		}
		out.Digest = d.Total
	}
	ctx := context.Background()
	switch {
	case username != "":
		u, _, found, err := st.UserByName(ctx, username)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%w: no user named %q", errNoSuchUser, username)
		}
		out.User = &u
	case userID != 0:
		u, found, err := st.User(ctx, userID)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%w: no user with id %d", errNoSuchUser, userID)
		}
		out.User = &u
	}
	return &out, nil
}

var errNoSuchUser = errors.New("no such user")

// mountAdmin adds the operator endpoints to the admin group (off unless an
// admin token is configured; guarded by it).
func mountAdmin(g *echo.Group, pl *pipeline.Pipeline, ctx context.Context, log *slog.Logger) {
	r := adminRouter{g: g, methods: map[string][]string{}}
	route := r.route
	route("/inspect", http.MethodGet, func(c echo.Context) error {
		q := c.QueryParams()
		var digest bool
		if v, ok := q["digest"]; ok {
			if len(v) != 1 || (v[0] != "true" && v[0] != "false") {
				return httpapi.Errorf(httpapi.EINVALID, "digest=%q: want true or false", v)
			}
			digest = v[0] == "true"
		}
		var id int64
		if v, ok := q["user_id"]; ok {
			s := strings.Join(v, ",")
			var err error
			if id, err = strconv.ParseInt(s, 10, 64); err != nil {
				return httpapi.Errorf(httpapi.EINVALID, "user_id=%q: want an integer", s)
			}
		}
		var out *inspection
		err := pl.Store(func(st *store.Store) (err error) {
			out, err = inspect(st, c.QueryParam("username"), id, digest)
			return err
		})
		if errors.Is(err, errNoSuchUser) {
			return httpapi.Errorf(httpapi.ENOTFOUND, "%v", err)
		}
		if err != nil {
			return err
		}
		for _, p := range pl.Partitions() {
			out.Partitions = append(out.Partitions, partitionView{p.String(), p.Next, p.End, max(p.End-p.Next, 0), p.Failed})
		}
		return c.JSON(http.StatusOK, out)
	})

	route("/snapshot", http.MethodGet, func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderContentType, "application/octet-stream")
		c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+store.FileName+`"`)
		n, err := pl.Snapshot(c.Response(), func(size int64) {
			c.Response().Header().Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
			c.Response().WriteHeader(http.StatusOK)
		})
		log.Info("snapshot served", "bytes", n, "err", err, "remote", c.RealIP())
		return nil // the status is sent; a broken copy is detected by the restorer
	})

	route("/rebuild", http.MethodPost, func(c echo.Context) error {
		var from time.Time
		if s := c.QueryParam("from"); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return httpapi.Errorf(httpapi.EINVALID, "from=%q: want an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", s)
			}
			from = t
		}
		if err := pl.StartRebuild(ctx, from); err != nil {
			pr, _ := pl.RebuildProgress()
			return c.JSON(http.StatusConflict, map[string]any{"detail": err.Error(), "progress": pr})
		}
		return c.JSON(http.StatusAccepted, map[string]any{"detail": "rebuild started; GET /admin/rebuild for progress"})
	})

	route("/compact", http.MethodPost, func(c echo.Context) error {
		before, after, err := pl.Compact(c.Request().Context())
		if errors.Is(err, pipeline.ErrRebuildRunning) {
			return c.JSON(http.StatusConflict, map[string]any{"detail": err.Error()})
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"bytes_before": before, "bytes_after": after})
	})

	route("/rebuild", http.MethodGet, func(c echo.Context) error {
		pr, ok := pl.RebuildProgress()
		if !ok {
			return httpapi.Errorf(httpapi.ENOTFOUND, "no rebuild has run since start")
		}
		return c.JSON(http.StatusOK, pr)
	})
}

// adminRouter mounts admin routes so that a method a path does not take
// answers 405 with an Allow header, not 404.
type adminRouter struct {
	g       *echo.Group
	methods map[string][]string // per path, the methods mounted
}

// route mounts h for method on path (GET also answers HEAD), and 405 for
// every other method, including ones the router does not know.
func (r adminRouter) route(path, method string, h echo.HandlerFunc) {
	g := r.g
	g.Add(method, path, h)
	r.methods[path] = append(r.methods[path], method)
	if method == http.MethodGet {
		g.Add(http.MethodHead, path, h)
		r.methods[path] = append(r.methods[path], http.MethodHead)
	}
	notAllowed := func(c echo.Context) error {
		c.Response().Header().Set("Allow", strings.Join(r.methods[path], ", "))
		return httpapi.Errorf(httpapi.EMETHOD, "Method %q not allowed.", c.Request().Method)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace} {
		if !slices.Contains(r.methods[path], m) {
			g.Add(m, path, notAllowed)
		}
	}
	// Methods the router does not know (QUERY, PROPFIND...) reach only a
	// not-found route with a wildcard; it must not swallow /inspectfoo.
	g.RouteNotFound(path+"*", func(c echo.Context) error {
		if c.Request().URL.Path != httpapi.AdminPrefix+path {
			return httpapi.Errorf(httpapi.ENOTFOUND, "Not found.")
		}
		return notAllowed(c)
	})
}
