package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// serviceMetrics are the metric families enrollstatus exports (the
// contract the dashboard and the alerts are written against), with their
// types. Histograms also answer as _bucket, _sum and _count.
var serviceMetrics = map[string]string{
	"enrollstatus_events_total":                         "counter",
	"enrollstatus_events_dropped_retired_total":         "counter",
	"enrollstatus_batch_messages":                       "histogram",
	"enrollstatus_apply_duration_seconds":               "histogram",
	"enrollstatus_consumer_lag_messages":                "gauge",
	"enrollstatus_consumer_position":                    "gauge",
	"enrollstatus_consumer_connected":                   "gauge",
	"enrollstatus_last_applied_event_timestamp_seconds": "gauge",
	"enrollstatus_offset_out_of_range_total":            "counter",
	"enrollstatus_consumer_errors_total":                "counter",
	"enrollstatus_consumer_partitions":                  "gauge",
	"enrollstatus_consumer_caught_up":                   "gauge",
	"enrollstatus_store_size_bytes":                     "gauge",
	"enrollstatus_store_last_commit_timestamp_seconds":  "gauge",
	"enrollstatus_build_info":                           "gauge",
	"enrollstatus_http_requests_total":                  "counter",
	"enrollstatus_http_request_duration_seconds":        "histogram",
	"enrollstatus_rebuild_progress_ratio":               "gauge",
	"enrollstatus_rebuild_events_total":                 "counter",
	// Prometheus's own series and the Go and process collectors used here.
	"up":                            "gauge",
	"process_resident_memory_bytes": "gauge",
	"process_cpu_seconds_total":     "counter",
	"go_memstats_heap_inuse_bytes":  "gauge",
}

// metricType is the type of the family a series name belongs to, and
// whether it is known.
func metricType(name string) (string, bool) {
	if typ, ok := serviceMetrics[name]; ok {
		return typ, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && serviceMetrics[base] == "histogram" {
			return "histogram" + suffix, true
		}
	}
	return "", false
}

var promqlParser = parser.NewParser(parser.Options{})

// checkPromQL parses expr with Prometheus's parser and checks that every
// series it selects is a known metric, used as its type allows: counters
// only through rate-like functions, histogram buckets through
// histogram_quantile.
func checkPromQL(t *testing.T, where, expr string) {
	t.Helper()
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: PromQL does not parse: %v\n%s", where, err, expr)
		return
	}
	found := 0
	parser.Inspect(e, func(node parser.Node, path []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		found++
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
		}
		typ, known := metricType(name)
		if !known {
			t.Errorf("%s: %q is not a metric enrollstatus exports\n%s", where, name, expr)
			return nil
		}
		fn := enclosingFunction(path)
		switch {
		case (typ == "counter" || typ == "histogram_sum" || typ == "histogram_count" || typ == "histogram_bucket") &&
			!slices.Contains([]string{"rate", "irate", "increase"}, fn):
			t.Errorf("%s: counter %s read without rate/increase (in %q)\n%s", where, name, fn, expr)
		case typ == "histogram_bucket" && !pathHasFunction(path, "histogram_quantile"):
			t.Errorf("%s: %s outside histogram_quantile\n%s", where, name, expr)
		case (typ == "gauge") && slices.Contains([]string{"rate", "irate", "increase"}, fn):
			t.Errorf("%s: gauge %s read with %s\n%s", where, name, fn, expr)
		}
		return nil
	})
	if found == 0 {
		t.Errorf("%s: selects no series\n%s", where, expr)
	}
}

// enclosingFunction is the innermost function call around a selector.
func enclosingFunction(path []parser.Node) string {
	for i := len(path) - 1; i >= 0; i-- {
		if c, ok := path[i].(*parser.Call); ok {
			return c.Func.Name
		}
	}
	return ""
}

func pathHasFunction(path []parser.Node, name string) bool {
	for _, n := range path {
		if c, ok := n.(*parser.Call); ok && c.Func.Name == name {
			return true
		}
	}
	return false
}

// grafanaVars are the dashboard's variables and Grafana's built-ins, with
// values that make the expressions plain PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h",
	"${job}", ".*", "$job", ".*",
	"${instance}", ".*", "$instance", ".*",
)

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestGrafanaDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(readFile(t, "grafana/enrollstatus.json"), &d); err != nil {
		t.Fatalf("grafana/enrollstatus.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Error("no datasource variable: the dashboard would be tied to one data source uid")
	}

	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	titles := map[string]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, p.Title)
					x = 1 << 30
					break
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			checkPromQL(t, fmt.Sprintf("panel %q", p.Title), grafanaVars.Replace(tg.Expr))
			for _, v := range []string{"$job", "$instance"} {
				if !strings.Contains(tg.Expr, v) {
					t.Errorf("panel %q ignores the %s variable: %s", p.Title, v, tg.Expr)
				}
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		m := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`).FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		checkPromQL(t, "variable "+v.Name, grafanaVars.Replace(m[1]))
	}

	// What the dashboard is for: each of these has a panel.
	for _, want := range []string{
		"Ingest rate by outcome", "Lag per partition", "Apply latency", "Batch size",
		"Request rate by code", "Latency by route", "Errors by code", "Store size",
		"Last event age", "Consumer connected", "Rebuild progress",
	} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
}

func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yml", false, model.UTF8Validation, promqlParser, nil)
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("recording rule %s: this file holds alerts only", r.Record)
				continue
			}
			alerts[r.Alert] = true
			checkPromQL(t, "alert "+r.Alert, r.Expr)
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a summary or description", r.Alert)
			}
		}
	}
	for _, want := range []string{
		"EnrollstatusConsumerDisconnected", "EnrollstatusLagGrowing", "EnrollstatusPoisonFailure",
		"EnrollstatusPoisonMessages", "EnrollstatusOffsetOutOfRange", "EnrollstatusHigh5xx",
	} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}
