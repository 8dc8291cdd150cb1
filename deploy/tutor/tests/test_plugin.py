"""
The plugin, checked on what the real `tutor config save` renders: the LMS and
CMS settings, the Caddy route, the docker compose service, the Kubernetes
objects, the openedx image, and the service's environment, which a real
enrollstatus binary (ENROLLSTATUS_BINARY) is started with to prove that tokens
signed with the LMS's keys are accepted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from Crypto.Hash import SHA512
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

STATUS_ROUTE_SAMPLES = {
    # path: routed to enrollstatus?
    "/api/mobile/v4/users/learner1/enrollments_status/": True,
    "/api/mobile/v3/users/learner1/enrollments_status/": True,
    "/api/mobile/v2/users/learner1/enrollments_status/": True,
    "/api/mobile/v1/users/learner1/enrollments_status/": True,
    "/api/mobile/v0.5/users/learner1/enrollments_status/": True,
    "/api/mobile/v4/users/José María/enrollments_status/": True,
    "/api/mobile/v4/users/learner1/enrollments_status": True,  # the APPEND_SLASH redirect
    "/api/mobile/v4/users/learner1/course_enrollments/": False,
    "/api/mobile/v4/users/learner1/": False,
    "/api/mobile/v5/users/learner1/enrollments_status/": False,
    "/api/mobile/v0x5/users/learner1/enrollments_status/": False,
    "/api/courses/v1/courses/": False,
    "/": False,
}


# --- LMS and CMS settings -------------------------------------------------


def enrollstatus_blocks(settings: str) -> str:
    """The code the plugin added to a rendered settings file."""
    blocks = re.findall(r"^# enrollstatus:.*?(?=^\s*$)", settings, re.M | re.S)
    assert blocks, "no enrollstatus settings in the file"
    return "\n".join(blocks)


def run_settings(code: str) -> dict:
    """Execute settings code as Django would, on the platform's defaults."""
    namespace = {
        "EVENT_TRACKING_BACKENDS": {"tracking_logs": {"ENGINE": "track.backends.logger.LoggerBackend"}},
        "INSTALLED_APPS": ["django.contrib.auth"],
        "EVENT_BUS_PRODUCER_CONFIG": {
            "org.openedx.learning.certificate.created.v1": {"learning-certificate-lifecycle": {"event_key_field": "certificate.course.course_key", "enabled": False}},
            "org.openedx.learning.course.unenrollment.completed.v1": {"course-unenrollment-lifecycle": {"event_key_field": "enrollment.course.course_key", "enabled": False}},
        },
    }
    exec(compile(code, "<settings>", "exec"), namespace)  # noqa: S102 - our own rendered settings
    return namespace


def test_lms_settings_produce_what_enrollstatus_reads(project):
    settings = project.read("apps/openedx/settings/lms/production.py")
    compile(settings, "lms/production.py", "exec")  # the whole file is still Python
    ns = run_settings(enrollstatus_blocks(settings))

    assert ns["EVENT_BUS_PRODUCER"] == "edx_event_bus_kafka.create_producer"
    assert ns["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert ns["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
    assert ns["EVENT_BUS_TOPIC_PREFIX"] == "dev"
    config = ns["EVENT_BUS_PRODUCER_CONFIG"]
    for event_type, topic, key in [
        ("org.openedx.learning.course.enrollment.created.v1", "learning-course-enrollment-lifecycle", "enrollment.course.course_key"),
        ("org.openedx.learning.course.enrollment.changed.v1", "learning-course-enrollment-lifecycle", "enrollment.course.course_key"),
        ("org.openedx.learning.course.unenrollment.completed.v1", "course-unenrollment-lifecycle", "enrollment.course.course_key"),
        ("org.openedx.analytics.tracking.event.emitted.v1", "analytics", "tracking_log.name"),
    ]:
        assert config[event_type][topic] == {"event_key_field": key, "enabled": True}, event_type
    # The platform's other producer entries are kept as they were.
    assert config["org.openedx.learning.certificate.created.v1"]["learning-certificate-lifecycle"]["enabled"] is False
    # The CMS produces catalog changes, not the LMS.
    assert "org.openedx.content_authoring.course.catalog_info.changed.v1" not in config

    # Block completions reach the bus as tracking events.
    assert ns["SEND_TRACKING_EVENT_EMITTED_SIGNAL"] is True
    assert "edx.completion.block_completion.changed" in ns["EVENT_BUS_TRACKING_LOGS"]
    backends = ns["EVENT_TRACKING_BACKENDS"]
    assert backends["enrollstatus_event_bus"]["ENGINE"] == "eventtracking.backends.event_bus.EventBusRoutingBackend"
    assert "tracking_logs" in backends
    assert "openedx_events" in ns["INSTALLED_APPS"]


def test_lms_settings_come_after_tutors_event_bus(project):
    """Tutor sets the Redis producer; ours must come later to win."""
    settings = project.read("apps/openedx/settings/lms/production.py")
    redis = settings.index("EVENT_BUS_PRODUCER = 'edx_event_bus_redis.create_producer'")
    kafka = settings.index('EVENT_BUS_PRODUCER = "edx_event_bus_kafka.create_producer"')
    assert redis < kafka


def test_cms_settings_produce_catalog_changes(project):
    settings = project.read("apps/openedx/settings/cms/production.py")
    compile(settings, "cms/production.py", "exec")
    ns = run_settings(enrollstatus_blocks(settings))
    assert ns["EVENT_BUS_PRODUCER"] == "edx_event_bus_kafka.create_producer"
    assert ns["EVENT_BUS_PRODUCER_CONFIG"]["org.openedx.content_authoring.course.catalog_info.changed.v1"]["course-catalog-info-changed"] == {
        "event_key_field": "catalog_info.course_key",
        "enabled": True,
    }
    assert "EVENT_TRACKING_BACKENDS" not in enrollstatus_blocks(settings)


def test_settings_follow_the_configuration(custom):
    ns = run_settings(enrollstatus_blocks(custom.read("apps/openedx/settings/lms/production.py")))
    assert ns["EVENT_BUS_TOPIC_PREFIX"] == "prod"
    assert ns["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"] == "k1:9092,k2:9092"


def test_event_bus_can_be_left_alone(no_event_bus):
    for variant in ("lms", "cms"):
        settings = no_event_bus.read(f"apps/openedx/settings/{variant}/production.py")
        assert "edx_event_bus_kafka" not in settings
        assert "EventBusRoutingBackend" not in settings
    assert "confluent-kafka" not in no_event_bus.read("build/openedx/Dockerfile")
    # enrollstatus itself still runs.
    assert "enrollstatus:" in no_event_bus.read("local/docker-compose.yml")


def test_openedx_image_installs_the_kafka_client(project):
    dockerfile = project.read("build/openedx/Dockerfile")
    assert "$PIP_COMMAND install 'confluent-kafka[avro,schema-registry]==" in dockerfile


# --- Caddy -----------------------------------------------------------------


def site_block(caddyfile: str, host: str) -> str:
    """The body of a Caddyfile site block, by its first address's host."""
    start = caddyfile.index("\n" + host)
    depth, i = 0, caddyfile.index(" {\n", start) + 1  # past {$placeholders} of the address
    for j in range(i, len(caddyfile)):
        depth += {"{": 1, "}": -1}.get(caddyfile[j], 0)
        if depth == 0:
            return caddyfile[i : j + 1]
    raise AssertionError("unbalanced braces")


def test_caddy_routes_the_status_path_on_the_lms_host(project):
    caddyfile = project.read("apps/caddy/Caddyfile")
    lms = site_block(caddyfile, project.config("LMS_HOST"))
    cms = site_block(caddyfile, project.config("CMS_HOST"))
    assert "enrollstatus" not in cms
    m = re.search(r"@enrollstatus path_regexp enrollstatus (\S+)", lms)
    assert m, "no @enrollstatus matcher in the LMS site"
    assert "reverse_proxy @enrollstatus enrollstatus:8080" in lms
    pattern = re.compile(m.group(1))
    for path, routed in STATUS_ROUTE_SAMPLES.items():
        assert bool(pattern.search(path)) == routed, path


def test_caddy_route_follows_the_port(custom):
    lms = site_block(custom.read("apps/caddy/Caddyfile"), "lms.example.com")
    assert "reverse_proxy @enrollstatus enrollstatus:8081" in lms
    assert "header_up X-Forwarded-Port 443" in lms


# --- docker compose (tutor local) ------------------------------------------


def test_local_compose_service(project):
    docs = project.yaml_docs("local/docker-compose.yml")
    assert len(docs) == 1
    services = docs[0]["services"]
    es = services["enrollstatus"]
    assert es["image"] == project.config("ENROLLSTATUS_DOCKER_IMAGE")
    assert es["command"] == ["serve"]
    assert es["read_only"] is True and es["user"] == "65532:65532" and es["cap_drop"] == ["ALL"]
    (env_file,) = es["env_file"]
    assert (project.env / "local" / env_file).resolve() == (project.env / "plugins/enrollstatus/apps/enrollstatus.env").resolve()
    assert "../../data/enrollstatus:/data:z" in es["volumes"]
    # The data directory is handed to the image's user by Tutor's permissions job.
    assert "../../data/enrollstatus:/mounts/enrollstatus:z" in services["permissions"]["volumes"]
    assert "setowner 65532 /mounts/enrollstatus" in project.read("apps/permissions/setowners.sh")
    # The LMS host's proxy (caddy, in the prod compose file) reaches it by name.
    prod = project.yaml_docs("local/docker-compose.prod.yml")[0]["services"]
    assert "caddy" in prod


# --- the service's environment ---------------------------------------------


def test_env_shares_the_lms_jwt_settings(project):
    env = project.env_file()
    assert env["ENROLLSTATUS_JWT_SECRET"] == project.config("JWT_COMMON_SECRET_KEY")
    assert env["ENROLLSTATUS_JWT_ISSUER"] == project.config("JWT_COMMON_ISSUER")
    assert env["ENROLLSTATUS_JWT_AUDIENCE"] == project.config("JWT_COMMON_AUDIENCE")
    # The JWK set is the public half of the key the LMS signs its JWTs with
    # (JWT_AUTH["JWT_PUBLIC_SIGNING_JWK_SET"] in Tutor's settings).
    jwks = json.loads(env["ENROLLSTATUS_JWKS"])
    key = RSA.import_key(project.config("JWT_RSA_PRIVATE_KEY"))
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == "openedx" and jwk["kty"] == "RSA"
    assert int.from_bytes(b64url_decode(jwk["n"]), "big") == key.n
    assert int.from_bytes(b64url_decode(jwk["e"]), "big") == key.e
    lms = project.read("apps/openedx/settings/lms/production.py")
    assert f'"n": "{jwk["n"]}"' in lms, "the LMS publishes another key"
    assert len(env["ENROLLSTATUS_ADMIN_TOKEN"]) >= 32


def test_env_topics_are_the_produced_ones(project, custom):
    assert project.env_file()["ENROLLSTATUS_TOPICS"].split(",") == [
        "dev-learning-course-enrollment-lifecycle",
        "dev-course-unenrollment-lifecycle",
        "dev-course-catalog-info-changed",
        "dev-analytics",
        "dev-enrollstatus-events",
    ]
    assert all(t.startswith("prod-") for t in custom.env_file()["ENROLLSTATUS_TOPICS"].split(","))
    assert custom.env_file()["ENROLLSTATUS_BROKERS"] == "k1:9092,k2:9092"


def service_env_names(binary: str) -> set[str]:
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, check=False, env={})
    names = set(re.findall(r"\(env (ENROLLSTATUS_[A-Z0-9_]+)\)", out.stdout + out.stderr))
    assert len(names) >= 10, out.stderr
    return names


@pytest.fixture(scope="session")
def binary() -> str:
    path = os.environ.get("ENROLLSTATUS_BINARY")
    if not path:
        pytest.skip("ENROLLSTATUS_BINARY is not set (test.sh builds it)")
    return path


def test_env_names_are_the_services(project, binary):
    known = service_env_names(binary) | {"GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"}
    assert set(project.env_file()) <= known


# --- Kubernetes (tutor k8s) ------------------------------------------------


def test_k8s_statefulset_and_services(project):
    docs = project.yaml_docs("k8s/deployments.yml")
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "enrollstatus"]
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["serve"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["fsGroup"] == 65532
    assert pod["terminationGracePeriodSeconds"] > 15 + c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]

    # Its environment is the Secret the kustomization adds.
    (secret_ref,) = c["envFrom"]
    secret_file = "plugins/enrollstatus/k8s/secret.yml"
    assert f"- {secret_file}" in project.read("kustomization.yml")
    (secret,) = project.yaml_docs(secret_file)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == secret_ref["secretRef"]["name"]
    assert secret["stringData"] == project.env_file()

    services = {d["metadata"]["name"]: d for d in project.yaml_docs("k8s/services.yml") if d["kind"] == "Service"}
    labels = sts["spec"]["template"]["metadata"]["labels"]
    for name in ("enrollstatus", "enrollstatus-headless"):
        assert services[name]["spec"]["selector"].items() <= labels.items()
    assert services["enrollstatus-headless"]["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == "enrollstatus-headless"


def test_k8s_objects_validate_against_kubernetes_schemas(project):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = [d for d in project.yaml_docs("k8s/deployments.yml") + project.yaml_docs("k8s/services.yml") if "enrollstatus" in d["metadata"]["name"]]
    docs += project.yaml_docs("plugins/enrollstatus/k8s/secret.yml")
    assert len(docs) == 4
    for doc in docs:
        for version in ("1.30.0", "1.37.0"):
            kubernetes_validate.validate(doc, version, strict=True)


def test_k8s_replicas_follow_the_configuration(custom):
    (sts,) = [d for d in custom.yaml_docs("k8s/deployments.yml") if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "enrollstatus"]
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8081


# --- the real service with the rendered environment ------------------------


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def lms_jwt(project, username: str, *, alg: str = "RS512", **claims) -> str:
    """A JWT like the LMS issues: RS512 with JWT_PRIVATE_SIGNING_JWK (kid
    "openedx"), or HS256 with JWT_AUTH["JWT_SECRET_KEY"]."""
    now = int(time.time())
    payload = {
        "preferred_username": username,
        "iss": project.config("JWT_COMMON_ISSUER"),
        "aud": project.config("JWT_COMMON_AUDIENCE"),
        "iat": now,
        "exp": now + 600,
        "scopes": ["read", "write", "email", "profile"],
        **claims,
    }
    header = {"alg": alg, "typ": "JWT"}
    if alg == "RS512":
        header["kid"] = "openedx"
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}".encode()
    if alg == "RS512":
        key = RSA.import_key(project.config("JWT_RSA_PRIVATE_KEY"))
        signature = pkcs1_15.new(key).sign(SHA512.new(signing_input))
    else:
        import hmac
        import hashlib

        signature = hmac.new(project.config("JWT_COMMON_SECRET_KEY").encode(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(signature)}"


@pytest.fixture(scope="session")
def running(project, binary, tmp_path_factory):
    """enrollstatus (its demo: an embedded broker and synthetic learners)
    started with the environment the plugin rendered."""
    env = {k: v for k, v in project.env_file().items()}
    env.update(
        ENROLLSTATUS_DATA_DIR=str(tmp_path_factory.mktemp("data")),
        ENROLLSTATUS_HTTP_ADDR="127.0.0.1:0",
        ENROLLSTATUS_LOG_FORMAT="text",
    )
    proc = subprocess.Popen(
        [binary, "demo", "--broker-addr", "127.0.0.1:0", "--history", "300", "--users", "20", "--courses", "5", "--rate", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base = None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            m = re.search(r"API:\s+(http://[^/]+)/", line)
            if m:
                base = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        assert base, "the service did not start with the rendered environment"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def get(url: str, authorization: str | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize(
    "alg,scheme",
    [("RS512", "JWT"), ("RS512", "Bearer"), ("HS256", "JWT")],
)
def test_lms_tokens_are_accepted(project, running, alg, scheme):
    token = lms_jwt(project, "learner1", alg=alg)
    code, body = get(running + "/api/mobile/v4/users/learner1/enrollments_status/", f"{scheme} {token}")
    assert code == 200, body
    assert isinstance(json.loads(body), list)


def test_foreign_tokens_are_refused(project, running):
    url = running + "/api/mobile/v4/users/learner1/enrollments_status/"
    assert get(url, "JWT " + lms_jwt(project, "learner1", iss="https://elsewhere/oauth2"))[0] == 401
    assert get(url, "JWT " + lms_jwt(project, "learner1", aud="someone-else"))[0] == 401
    assert get(url, "JWT " + lms_jwt(project, "learner2"))[0] == 403


def test_admin_token_opens_the_admin_endpoints(project, running):
    token = project.env_file()["ENROLLSTATUS_ADMIN_TOKEN"]
    code, body = get(running + "/admin/inspect", f"Bearer {token}")
    assert code == 200, body
    assert get(running + "/admin/inspect", "Bearer not-the-token-not-the-token-not-the-token")[0] == 401


# --- Caddy, for real -------------------------------------------------------


@pytest.fixture(scope="session")
def caddy() -> str:
    path = os.environ.get("CADDY_BIN")
    if not path:
        pytest.skip("CADDY_BIN is not set (test.sh builds Caddy when it can)")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_backend(name: str):
    """An HTTP server on loopback that answers every request with its name."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"backend": name, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get_with_host(url: str, host: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_caddy_proxies_the_status_path_to_enrollstatus(project, caddy, tmp_path):
    """Tutor's real Caddyfile, run by a real Caddy: the upstream names are
    pointed at two loopback servers and each sample path must reach the right
    one through the LMS site."""
    lms, es = start_backend("lms"), start_backend("enrollstatus")
    port = free_port()
    caddyfile = project.read("apps/caddy/Caddyfile")
    caddyfile = caddyfile.replace('"lms:8000"', f'"127.0.0.1:{lms.server_port}"')
    caddyfile = caddyfile.replace('"cms:8000"', f'"127.0.0.1:{lms.server_port}"')
    caddyfile = caddyfile.replace("enrollstatus:8080", f"127.0.0.1:{es.server_port}")
    # Plain HTTP on a free port, no certificates, no admin endpoint.
    caddyfile = caddyfile.replace(
        "# Global configuration\n{",
        f"# Global configuration\n{{\n    auto_https off\n    admin off\n    http_port {port}\n    https_port {free_port()}\n"
        f"    storage file_system {tmp_path / 'caddy-data'}\n",
        1,
    )
    assert "auto_https off" in caddyfile
    (tmp_path / "Caddyfile").write_text(caddyfile)
    env = dict(os.environ, default_site_port=f":{port}", HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))

    adapted = subprocess.run([caddy, "adapt", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"], env=env, capture_output=True, text=True)
    assert adapted.returncode == 0, adapted.stderr

    proc = subprocess.Popen([caddy, "run", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        host = project.config("LMS_HOST")
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host}), timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "caddy did not start"
                time.sleep(0.2)
        for path, routed in STATUS_ROUTE_SAMPLES.items():
            url = f"http://127.0.0.1:{port}" + urllib.parse.quote(path)
            code, body = get_with_host(url, host)
            assert code == 200, f"{path}: {code} {body!r}"
            answer = json.loads(body)
            assert answer["backend"] == ("enrollstatus" if routed else "lms"), path
            assert urllib.parse.unquote(answer["path"]) == path
        # Studio keeps all its paths.
        url = f"http://127.0.0.1:{port}/api/mobile/v4/users/learner1/enrollments_status/"
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": project.config("CMS_HOST")}), timeout=5) as resp:
            assert json.loads(resp.read())["backend"] == "lms"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        lms.shutdown()
        es.shutdown()
