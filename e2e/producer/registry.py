#!/usr/bin/env python3
"""A minimal Confluent-compatible schema registry for the end-to-end tests.

Only the standard library; it listens on 127.0.0.1 only.

The real Open edX producer (edx-event-bus-kafka -> confluent-kafka's AvroSerializer)
refuses to produce without a schema registry: on the first message of each subject it
POSTs the schema to /subjects/{subject}/versions and writes the returned id into the
Confluent framing (0x00 + 4-byte big-endian id). That is the only call the serializer
makes with edx-event-bus-kafka's settings (auto.register.schemas on, use.latest.version
off; see confluent_kafka/schema_registry/_sync/avro.py and schema_registry_client.py).
A consumer resolves ids with GET /schemas/ids/{id}. A few read-only calls are answered
too, for debugging with curl.

Like the real registry, an id belongs to a schema (the same schema registered under two
subjects gets one id), and versions are per subject.

    python3 registry.py [--port 0] [--port-file FILE] [--store FILE] [--verbose]

--port 0 picks a free port; the URL is printed on stdout ("http://127.0.0.1:PORT") and,
with --port-file, written to FILE once the server accepts connections. --store keeps the
registry in a JSON file so that ids survive a restart of the registry.
"""

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Registry:
    def __init__(self, store=None):
        self.lock = threading.Lock()
        self.store = store
        self.schemas = {}  # id -> {"schema": str, "schemaType": str, "references": list}
        self.by_key = {}  # canonical key -> id
        self.subjects = {}  # subject -> [id, ...] (index = version - 1)
        if store and os.path.exists(store):
            with open(store, encoding="utf-8") as f:
                data = json.load(f)
            self.schemas = {int(k): v for k, v in data["schemas"].items()}
            self.subjects = data["subjects"]
            self.by_key = {self._key(v): k for k, v in self.schemas.items()}

    @staticmethod
    def _key(s):
        text = s["schema"]
        try:  # Avro/JSON schemas: ignore formatting differences
            text = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        except ValueError:
            pass
        return json.dumps([s.get("schemaType", "AVRO"), text, s.get("references") or []], sort_keys=True)

    def _save(self):
        if not self.store:
            return
        d = os.path.dirname(os.path.abspath(self.store))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".registry-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"schemas": self.schemas, "subjects": self.subjects}, f)
        os.replace(tmp, self.store)

    def register(self, subject, body):
        s = {
            "schema": body["schema"],
            "schemaType": body.get("schemaType") or "AVRO",
            "references": body.get("references") or [],
        }
        key = self._key(s)
        with self.lock:
            sid = self.by_key.get(key)
            if sid is None:
                sid = max(self.schemas, default=0) + 1
                self.schemas[sid] = s
                self.by_key[key] = sid
            versions = self.subjects.setdefault(subject, [])
            if sid not in versions:
                versions.append(sid)
            self._save()
            return {"id": sid}

    def lookup(self, subject, body):
        s = {"schema": body["schema"], "schemaType": body.get("schemaType") or "AVRO",
             "references": body.get("references") or []}
        with self.lock:
            sid = self.by_key.get(self._key(s))
            versions = self.subjects.get(subject)
            if versions is None:
                return None, (40401, f"Subject '{subject}' not found.")
            if sid is None or sid not in versions:
                return None, (40403, "Schema not found")
            return self._version(subject, versions.index(sid) + 1), None

    def _version(self, subject, version):
        sid = self.subjects[subject][version - 1]
        out = {"subject": subject, "version": version, "id": sid, "schema": self.schemas[sid]["schema"]}
        if self.schemas[sid]["schemaType"] != "AVRO":
            out["schemaType"] = self.schemas[sid]["schemaType"]
        if self.schemas[sid]["references"]:
            out["references"] = self.schemas[sid]["references"]
        return out

    def get_by_id(self, sid):
        with self.lock:
            s = self.schemas.get(sid)
            if s is None:
                return None
            out = {"schema": s["schema"]}
            if s["schemaType"] != "AVRO":
                out["schemaType"] = s["schemaType"]
            if s["references"]:
                out["references"] = s["references"]
            return out


class Handler(BaseHTTPRequestHandler):
    server_version = "enrollstatus-e2e-registry/1"
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    registry = None  # set in main
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("registry: " + (fmt % args) + "\n")

    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code, error_code, message):
        self._send(code, {"error_code": error_code, "message": message})

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw or b"{}")

    def _path(self):
        return [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/") if p]

    def do_POST(self):  # noqa: N802
        p = self._path()
        try:
            body = self._body()
        except ValueError:
            return self._error(422, 42201, "Invalid JSON body")
        if "schema" not in body:
            return self._error(422, 42201, "Missing 'schema'")
        if len(p) == 3 and p[0] == "subjects" and p[2] == "versions":
            return self._send(200, self.registry.register(p[1], body))
        if len(p) == 2 and p[0] == "subjects":
            found, err = self.registry.lookup(p[1], body)
            if err:
                return self._error(404, *err)
            return self._send(200, found)
        if len(p) == 4 and p[:2] == ["compatibility", "subjects"]:
            return self._send(200, {"is_compatible": True})
        return self._error(404, 404, f"Not found: POST /{'/'.join(p)}")

    def do_GET(self):  # noqa: N802
        p = self._path()
        reg = self.registry
        if not p:
            return self._send(200, {})
        if p == ["schemas", "types"]:
            return self._send(200, ["AVRO"])
        if p == ["config"] or (len(p) == 2 and p[0] == "config"):
            return self._send(200, {"compatibilityLevel": "NONE"})
        if p == ["subjects"]:
            with reg.lock:
                return self._send(200, sorted(reg.subjects))
        if len(p) >= 3 and p[:2] == ["schemas", "ids"] and re.fullmatch(r"\d+", p[2]):
            sid = int(p[2])
            s = reg.get_by_id(sid)
            if s is None:
                return self._error(404, 40403, "Schema not found")
            if len(p) == 3:
                return self._send(200, s)
            with reg.lock:
                pairs = [(subj, vs.index(sid) + 1) for subj, vs in sorted(reg.subjects.items()) if sid in vs]
            if p[3:] == ["subjects"]:
                return self._send(200, [subj for subj, _ in pairs])
            if p[3:] == ["versions"]:
                return self._send(200, [{"subject": subj, "version": v} for subj, v in pairs])
            if p[3:] == ["schema"]:
                return self._send(200, json.loads(s["schema"]))
        if len(p) >= 3 and p[0] == "subjects" and p[2] == "versions":
            with reg.lock:
                versions = reg.subjects.get(p[1])
                if versions is None:
                    return self._error(404, 40401, f"Subject '{p[1]}' not found.")
                if len(p) == 3:
                    return self._send(200, list(range(1, len(versions) + 1)))
                v = len(versions) if p[3] in ("latest", "-1") else int(p[3]) if p[3].isdigit() else 0
                if not 1 <= v <= len(versions):
                    return self._error(404, 40402, "Version not found.")
                out = reg._version(p[1], v)
                if p[4:] == ["schema"]:
                    return self._send(200, json.loads(out["schema"]))
                return self._send(200, out)
        return self._error(404, 404, f"Not found: GET /{'/'.join(p)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--store", help="JSON file to keep the registry in across restarts")
    ap.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = ap.parse_args()

    Handler.registry = Registry(args.store)
    Handler.verbose = args.verbose
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"http://127.0.0.1:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
