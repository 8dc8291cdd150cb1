package deploy

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

var openapiPath = filepath.Join(repoRoot, "httpapi", "openapi.yaml")

const statusPath = "/api/mobile/{version}/users/{username}/enrollments_status/"

// TestOpenAPI validates httpapi/openapi.yaml with kin-openapi and checks it
// against the contract (docs/api.md) and against the constants of the
// implementation in httpapi/ (versions, freshness headers). That the server
// answers as the document says is scripts/openapi-check.sh's job
// (schemathesis against the running demo).
func TestOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openapiPath)
	if err != nil {
		t.Fatalf("kin-openapi cannot load %s: %v", openapiPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", openapiPath, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}

	item := doc.Paths.Find(statusPath)
	if item == nil || item.Get == nil {
		t.Fatalf("no GET %s", statusPath)
	}
	params := map[string]*openapi3.Parameter{}
	for _, p := range item.Parameters {
		params[p.Value.Name] = p.Value
	}
	if p := params["version"]; p == nil || p.In != "path" {
		t.Fatal("no version path parameter")
	} else {
		var enum []string
		for _, v := range p.Schema.Value.Enum {
			enum = append(enum, v.(string))
		}
		if want := implVersions(t); !slices.Equal(enum, want) {
			t.Errorf("version enum %v, the implementation answers %v", enum, want)
		}
	}
	if p := params["username"]; p == nil || p.In != "path" {
		t.Fatal("no username path parameter")
	} else {
		checkUsernamePattern(t, p.Schema.Value.Pattern)
	}

	get := item.Get
	if get.Security == nil || len(*get.Security) != 2 {
		t.Errorf("GET %s: want the JWT and Bearer security alternatives", statusPath)
	}
	for _, name := range []string{"JWT", "Bearer", "AdminToken"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("no security scheme %s", name)
		}
	}
	if s := doc.Components.SecuritySchemes["JWT"].Value; s.Type != "apiKey" || s.In != "header" || s.Name != "Authorization" {
		t.Errorf("JWT scheme %+v, want an Authorization header", s)
	}
	if s := doc.Components.SecuritySchemes["Bearer"].Value; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("Bearer scheme %+v, want http bearer", s)
	}

	ok := get.Responses.Status(200)
	if ok == nil {
		t.Fatal("GET status: no 200")
	}
	for _, h := range implFreshnessHeaders(t) {
		if ok.Value.Headers[h] == nil {
			t.Errorf("GET status 200 does not document the %s header", h)
		}
	}
	arr := ok.Value.Content.Get("application/json").Schema.Value
	if !arr.Type.Is("array") {
		t.Fatalf("GET status 200 is %v, want an array", arr.Type)
	}
	item0 := arr.Items.Value
	for name, typ := range map[string]string{"course_id": "string", "course_name": "string", "recently_active": "boolean"} {
		p := item0.Properties[name]
		if p == nil || !p.Value.Type.Is(typ) || !slices.Contains(item0.Required, name) {
			t.Errorf("status entry %s: want a required %s", name, typ)
		}
	}
	if !item0.Properties["course_name"].Value.Nullable {
		t.Error("course_name must be nullable (null when the name is unknown)")
	}
	for _, code := range []int{401, 403, 404} {
		checkDetail(t, "GET status", get.Responses.Status(code), code)
	}
	if item.Post == nil {
		t.Error("no other method documented with its 405")
	} else {
		checkDetail(t, "POST status", item.Post.Responses.Status(405), 405)
	}
	redirect := doc.Paths.Find(strings.TrimSuffix(statusPath, "/"))
	if redirect == nil || redirect.Get == nil || redirect.Get.Responses.Status(301) == nil ||
		redirect.Get.Responses.Status(301).Value.Headers["Location"] == nil {
		t.Error("the slash-less route's 301 with Location is not documented")
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		it := doc.Paths.Find(path)
		if it == nil || it.Get == nil || it.Get.Responses.Status(200) == nil {
			t.Errorf("GET %s 200 is not documented", path)
		}
	}
	if r := doc.Paths.Find("/readyz"); r != nil && r.Get != nil && r.Get.Responses.Status(503) == nil {
		t.Error("the 503 of /readyz is not documented")
	}

	admin := 0
	for path, it := range doc.Paths.Map() {
		for method, op := range it.Operations() {
			isAdmin := strings.HasPrefix(path, "/admin/")
			if isAdmin != slices.Contains(op.Tags, "admin") {
				t.Errorf("%s %s: tagged %v", method, path, op.Tags)
			}
			if isAdmin {
				admin++
				if op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["AdminToken"] == nil {
					t.Errorf("%s %s is not guarded by the admin token", method, path)
				}
				if op.Responses.Status(401) == nil || op.Responses.Status(404) == nil {
					t.Errorf("%s %s: 401 and 404 (admin off) not documented", method, path)
				}
			}
		}
	}
	if admin == 0 {
		t.Error("no admin endpoint documented")
	}
}

func checkDetail(t *testing.T, where string, r *openapi3.ResponseRef, code int) {
	t.Helper()
	if r == nil {
		t.Errorf("%s: %d not documented", where, code)
		return
	}
	mt := r.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value.Properties["detail"] == nil ||
		!slices.Contains(mt.Schema.Value.Required, "detail") {
		t.Errorf("%s: %d is not a JSON {detail: string}", where, code)
	}
}

// implVersions reads the versions the implementation routes
// (httpapi.Versions).
func implVersions(t *testing.T) []string {
	src := string(readFile(t, filepath.Join(repoRoot, "httpapi", "mobile.go")))
	m := regexp.MustCompile(`var [Vv]ersions = \[\]string\{([^}]*)\}`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("httpapi/mobile.go no longer declares its versions")
	}
	var out []string
	for _, q := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(m[1], -1) {
		out = append(out, q[1])
	}
	return out
}

// implFreshnessHeaders reads the freshness headers the implementation sets
// (httpapi.Header*).
func implFreshnessHeaders(t *testing.T) []string {
	src := string(readFile(t, filepath.Join(repoRoot, "httpapi", "status.go")))
	var out []string
	for _, m := range regexp.MustCompile(`Header\w+\s*=\s*"(X-Enrollstatus-[^"]+)"`).FindAllStringSubmatch(src, -1) {
		out = append(out, m[1])
	}
	if len(out) < 4 {
		t.Fatalf("httpapi/status.go declares %d freshness headers; expected 4", len(out))
	}
	return out
}

// checkUsernamePattern checks that the document's username pattern takes
// exactly the ASCII characters of the LMS's [\w .@_+-] and lets non-ASCII
// letters through (JSON Schema regexes cannot say "Unicode letter", so the
// rest is left to the server's 404, as the document says).
func checkUsernamePattern(t *testing.T, pattern string) {
	t.Helper()
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("username pattern %q: %v", pattern, err)
	}
	lms := regexp.MustCompile(`^[A-Za-z0-9_ .@+-]$`)
	for c := rune(0); c < 128; c++ {
		if re.MatchString(string(c)) != lms.MatchString(string(c)) {
			t.Errorf("username pattern %q and the LMS's disagree on %q", pattern, c)
		}
	}
	for _, u := range []string{"learner1", "José Ünal", "a.b@c+d-e_f", "学生"} {
		if !re.MatchString(u) {
			t.Errorf("username pattern %q refuses %q, which the LMS takes", pattern, u)
		}
	}
	if re.MatchString("") || re.MatchString("a/b") {
		t.Errorf("username pattern %q takes an empty name or a slash", pattern)
	}
}
