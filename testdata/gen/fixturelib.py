"""Helpers shared by generate.py and debezium.py: the fixture file format.

One JSON file per Kafka message, testdata/events/<format>/<name>.json:

    {"name", "format", "topic", "key_b64", "value_b64", "headers": [{"key","value"}],
     "writer_schema", "schema_id",            # eventbus only
     "expect": [domain events], "ignored"}    # "ignored" only when expect is empty

Times in "expect" are UTC and formatted like Go's time.RFC3339Nano
(trailing zeros of the fraction dropped, no fraction when it is zero).
"""

import base64
import json
import os
import shutil
from datetime import datetime, timezone

# Keys that come first in a fixture file, in this order; any others follow sorted.
_ORDER = ["name", "format", "description", "topic", "key_b64", "value_b64", "headers",
          "writer_schema", "schema_id", "key_schema", "key_schema_id", "expect", "ignored"]


def rfc3339(dt: datetime) -> str:
    """A datetime as an RFC 3339 UTC string, as Go's time.RFC3339Nano formats it."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}")
    dt = dt.astimezone(timezone.utc)
    out = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        out += (".%06d" % dt.microsecond).rstrip("0")
    return out + "Z"


def rfc3339_from_iso(s: str) -> str:
    """An ISO-8601 string with an offset (as Python's isoformat writes it) as RFC 3339 UTC."""
    return rfc3339(datetime.fromisoformat(s))


def rfc3339_from_ms(ms: int) -> str:
    return rfc3339(datetime.fromtimestamp(ms / 1000, tz=timezone.utc).replace(
        microsecond=(ms % 1000) * 1000))


def b64(data):
    if data is None:
        return None
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def headers_list(headers):
    """Kafka headers (dict or list of pairs, values bytes or str) as the fixture list."""
    items = headers.items() if isinstance(headers, dict) else headers
    out = []
    for k, v in items:
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        out.append({"key": k, "value": v})
    return out


def reset_dir(path):
    """Empty a generated directory so that fixtures removed from a script disappear."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def write_fixture(directory, fixture):
    if fixture.get("expect") == [] and not fixture.get("ignored"):
        raise ValueError(f"{fixture['name']}: an empty expect needs an 'ignored' reason")
    if fixture.get("expect") and fixture.get("ignored"):
        raise ValueError(f"{fixture['name']}: 'ignored' with a non-empty expect")
    ordered = {k: fixture[k] for k in _ORDER if k in fixture}
    for k in sorted(fixture):
        if k not in ordered:
            ordered[k] = fixture[k]
    path = os.path.join(directory, fixture["name"] + ".json")
    if os.path.exists(path):
        raise ValueError(f"duplicate fixture name {fixture['name']}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(ordered, indent=2, ensure_ascii=False))
        f.write("\n")
    return path
