#!/usr/bin/env python3
"""Debezium change-event fixtures for the LMS tables the projection reads.

Run through generate.sh; argument: the repository root. Standard library only.

No Debezium runs here (it needs Kafka Connect and a MySQL binlog), so these messages
are typed from Debezium's documented MySQL connector format, as Kafka Connect's
JsonConverter writes it:

- value.converter.schemas.enable=true:  {"schema": {...Envelope...}, "payload": {...}}
- value.converter.schemas.enable=false: the payload alone
- payload: {"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"};
  op c (insert), u (update), d (delete: after null), r (snapshot read); a delete is
  followed by a tombstone (same key, null value) unless tombstones.on.delete=false.
- key: {"id": ...} (the primary key), with or without its schema likewise.
- topic: {topic.prefix}.{database}.{table}, here lms.edxapp.<table>.
- default type mapping (time.precision.mode=adaptive_time_microseconds,
  decimal.handling.mode=precise, bigint.unsigned.handling.mode=long):
    INT -> int32, BIGINT -> int64, VARCHAR/LONGTEXT -> string, DOUBLE -> double,
    TINYINT(1) -> int16 (0/1) by default, or boolean with
        converters=boolean, boolean.type=io.debezium.connector.mysql.converters.TinyIntOneToBooleanConverter,
    DATETIME(4..6) -> int64 io.debezium.time.MicroTimestamp (microseconds since the
        epoch, the wall-clock value read as UTC; Django stores UTC),
    DATETIME(0..3) -> int64 io.debezium.time.Timestamp (milliseconds),
    TIMESTAMP -> string io.debezium.time.ZonedTimestamp (ISO-8601 in UTC, "Z"),
    DECIMAL(p,s) -> bytes org.apache.kafka.connect.data.Decimal (big-endian two's
        complement unscaled value; base64 in JSON), parameters scale/precision.

Column lists follow the Django models of edx-platform and edx-completion;
course_overviews_courseoverview has many more columns than shown (a decoder must
ignore columns it does not know).
"""

import base64
import json
import os
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "testdata", "events", "debezium")

SERVER = "lms"      # topic.prefix
DATABASE = "edxapp"
DEBEZIUM_VERSION = "2.7.3.Final"
SERVER_ID = 223344

# ---------------------------------------------------------------------------
# Connect schema pieces
# ---------------------------------------------------------------------------


def col(field, ctype, optional=False, name=None, parameters=None):
    c = {"type": ctype, "optional": optional}
    if name:
        c["name"] = name
        c["version"] = 1
    if parameters:
        c["parameters"] = parameters
    c["field"] = field
    return c


def micro_ts(field, optional=False):
    return col(field, "int64", optional, "io.debezium.time.MicroTimestamp")


def milli_ts(field, optional=False):
    return col(field, "int64", optional, "io.debezium.time.Timestamp")


def zoned_ts(field, optional=False):
    return col(field, "string", optional, "io.debezium.time.ZonedTimestamp")


def tinyint1(field, boolean=False, optional=False):
    return col(field, "boolean" if boolean else "int16", optional)


def decimal(field, precision, scale, optional=False):
    c = {"type": "bytes", "optional": optional, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
         "parameters": {"scale": str(scale), "connect.decimal.precision": str(precision)}, "field": field}
    return c


SOURCE_SCHEMA = {
    "type": "struct",
    "fields": [
        col("version", "string"),
        col("connector", "string"),
        col("name", "string"),
        col("ts_ms", "int64"),
        {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
         "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
         "default": "false", "field": "snapshot"},
        col("db", "string"),
        col("sequence", "string", True),
        col("ts_us", "int64", True),
        col("ts_ns", "int64", True),
        col("table", "string", True),
        col("server_id", "int64"),
        col("gtid", "string", True),
        col("file", "string"),
        col("pos", "int64"),
        col("row", "int32"),
        col("thread", "int64", True),
        col("query", "string", True),
    ],
    "optional": False,
    "name": "io.debezium.connector.mysql.Source",
    "field": "source",
}

TRANSACTION_SCHEMA = {
    "type": "struct",
    "fields": [col("id", "string"), col("total_order", "int64"), col("data_collection_order", "int64")],
    "optional": True,
    "name": "event.block",
    "version": 1,
    "field": "transaction",
}


class Table:
    def __init__(self, name, columns, key_column):
        self.name = name
        self.columns = columns
        self.key_column = key_column

    @property
    def topic(self):
        return f"{SERVER}.{DATABASE}.{self.name}"

    def value_struct(self, field):
        return {"type": "struct", "fields": self.columns, "optional": True,
                "name": f"{self.topic}.Value", "field": field}

    def envelope_schema(self):
        return {
            "type": "struct",
            "fields": [
                self.value_struct("before"),
                self.value_struct("after"),
                SOURCE_SCHEMA,
                TRANSACTION_SCHEMA,
                col("op", "string"),
                col("ts_ms", "int64", True),
                col("ts_us", "int64", True),
                col("ts_ns", "int64", True),
            ],
            "optional": False,
            "name": f"{self.topic}.Envelope",
            "version": 2,
        }

    def key_schema(self):
        key = next(c for c in self.columns if c["field"] == self.key_column)
        return {"type": "struct", "fields": [dict(key, optional=False)], "optional": False,
                "name": f"{self.topic}.Key"}

    def check_row(self, row):
        if row is None:
            return
        names = [c["field"] for c in self.columns]
        if list(row) != names:
            raise ValueError(f"{self.name}: row columns {list(row)} != schema {names}")


# ---------------------------------------------------------------------------
# Value encodings
# ---------------------------------------------------------------------------
UTC = timezone.utc


def dt(s):
    """A DATETIME value as written in the row (read as UTC, as Django stores it)."""
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def micros(s):
    d = dt(s)
    return (int(d.replace(microsecond=0).timestamp()) * 1_000_000) + d.microsecond


def millis(s):
    d = dt(s)
    return int(d.replace(microsecond=0).timestamp()) * 1000 + d.microsecond // 1000


def zoned(s):
    return fl.rfc3339(dt(s))


def decimal_bytes(value, scale):
    unscaled = round(value * 10 ** scale)
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(length, "big", signed=True)).decode("ascii")


# ---------------------------------------------------------------------------
# Tables (columns in the order of the LMS's MySQL tables)
# ---------------------------------------------------------------------------


def enrollment_table(is_active_boolean=False, created="micro"):
    created_col = {"micro": micro_ts, "milli": milli_ts, "zoned": zoned_ts}[created]("created", optional=True)
    return Table("student_courseenrollment", [
        col("id", "int32"),
        col("course_id", "string"),
        created_col,
        tinyint1("is_active", boolean=is_active_boolean),
        col("mode", "string"),
        col("user_id", "int32"),
    ], "id")


COMPLETION = Table("completion_blockcompletion", [
    col("id", "int64"),
    micro_ts("created"),
    micro_ts("modified"),
    col("course_key", "string"),
    col("block_key", "string"),
    col("block_type", "string"),
    col("completion", "double"),
    col("user_id", "int32"),
], "id")

COURSE = Table("course_overviews_courseoverview", [
    micro_ts("created"),
    micro_ts("modified"),
    col("version", "int32"),
    col("id", "string"),
    col("_location", "string"),
    col("display_name", "string", True),
    col("display_number_with_default", "string"),
    col("display_org_with_default", "string"),
    micro_ts("start", True),
    micro_ts("end", True),
    col("course_image_url", "string"),
    decimal("lowest_passing_grade", 5, 2, True),
    col("days_early_for_beta", "double", True),
    tinyint1("mobile_available"),
    tinyint1("visible_to_staff_only"),
    micro_ts("enrollment_start", True),
    micro_ts("enrollment_end", True),
    tinyint1("invitation_only"),
    col("catalog_visibility", "string", True),
    col("org", "string"),
    tinyint1("self_paced"),
    col("language", "string", True),
    micro_ts("certificate_available_date", True),
    tinyint1("has_highlights", optional=True),
    tinyint1("entrance_exam_enabled"),
], "id")

USER = Table("auth_user", [
    col("id", "int32"),
    col("password", "string"),
    micro_ts("last_login", True),
    tinyint1("is_superuser"),
    col("username", "string"),
    col("first_name", "string"),
    col("last_name", "string"),
    col("email", "string"),
    tinyint1("is_staff"),
    tinyint1("is_active"),
    micro_ts("date_joined"),
], "id")

# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------
_POS = [4711]


def source(table, ts_ms, snapshot="false"):
    _POS[0] += 617
    s = {
        "version": DEBEZIUM_VERSION,
        "connector": "mysql",
        "name": SERVER,
        "ts_ms": ts_ms,
        "snapshot": snapshot,
        "db": DATABASE,
        "sequence": None,
        "ts_us": ts_ms * 1000,
        "ts_ns": ts_ms * 1_000_000,
        "table": table.name,
        "server_id": 0 if snapshot != "false" else SERVER_ID,
        "gtid": None,
        "file": "mysql-bin.000003",
        "pos": _POS[0],
        "row": 0,
        "thread": None if snapshot != "false" else 1187,
        "query": None,
    }
    return s


def envelope(table, op, before, after, ts, source_ts, snapshot="false"):
    """ts: when Debezium processed the change (payload ts_ms); source_ts: when the
    database made it (source.ts_ms); both as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC."""
    ts_ms, source_ts_ms = millis(ts), millis(source_ts)
    if source_ts_ms > ts_ms:
        raise ValueError("source.ts_ms after ts_ms")
    table.check_row(before)
    table.check_row(after)
    return {
        "before": before,
        "after": after,
        "source": source(table, source_ts_ms, snapshot),
        "transaction": None,
        "op": op,
        "ts_ms": ts_ms,
        "ts_us": ts_ms * 1000 + 317,
        "ts_ns": (ts_ms * 1000 + 317) * 1000,
    }


def dumps(obj):
    # Kafka Connect's JsonConverter: compact JSON, UTF-8, fields in schema order
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def fixture(name, description, table, key_value, payload, schemas, expect, ignored=None):
    key = {table.key_column: key_value}
    if schemas:
        key_json = {"schema": table.key_schema(), "payload": key}
        value_json = None if payload is None else {"schema": table.envelope_schema(), "payload": payload}
    else:
        key_json, value_json = key, payload
    f = {
        "name": name,
        "format": "debezium",
        "description": description + ("; JsonConverter schemas.enable=true" if schemas
                                       else "; JsonConverter schemas.enable=false"),
        "topic": table.topic,
        "key_b64": fl.b64(dumps(key_json)),
        "value_b64": None if value_json is None else fl.b64(dumps(value_json)),
        "headers": [],
        "expect": expect,
    }
    if ignored:
        f["ignored"] = ignored
    fl.write_fixture(OUT, f)


def time_of(payload):
    """The event time: ts_ms, refined within its millisecond by ts_us (ts_ns
    adds nothing here: it is ts_us * 1000)."""
    us = payload["ts_us"]
    if us // 1000 != payload["ts_ms"]:
        raise ValueError("ts_us outside ts_ms's millisecond")
    return fl.rfc3339(datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc).replace(microsecond=us % 1_000_000))


def bool01(v):
    return bool(v)


# ----- student_courseenrollment ----------------------------------------------


def enrollment_row(id_, course_id, created, is_active, mode, user_id, created_enc=micros):
    return {"id": id_, "course_id": course_id, "created": None if created is None else created_enc(created),
            "is_active": is_active, "mode": mode, "user_id": user_id}


def expect_enrollment(row, created_text, payload, is_active=None):
    return {"kind": "enrollment", "user_id": row["user_id"], "course_id": row["course_id"], "mode": row["mode"],
            "is_active": bool01(row["is_active"]) if is_active is None else is_active,
            "created": fl.rfc3339(dt(created_text)), "time": time_of(payload)}


def enrollment_fixtures():
    t = enrollment_table()
    demo = "course-v1:edX+DemoX+Demo_Course"

    created = "2026-11-01 10:00:00.123456"
    row = enrollment_row(101, demo, created, 1, "audit", 7)
    p = envelope(t, "c", None, row, "2026-11-01 10:00:00.457", "2026-11-01 10:00:00.124")
    fixture("dbz_enrollment_insert", "alice enrolls (INSERT); is_active TINYINT(1) as int16 1; created "
            "DATETIME(6) as MicroTimestamp", t, 101, p, True, [expect_enrollment(row, created, p)])
    fixture("dbz_enrollment_insert_noschema", "the same INSERT without schemas", t, 101, p, False,
            [expect_enrollment(row, created, p)])

    after = dict(row, is_active=0)
    p = envelope(t, "u", row, after, "2026-11-05 08:15:30.250", "2026-11-05 08:15:30.000")
    fixture("dbz_enrollment_update_deactivate", "alice unenrolls: UPDATE is_active 1 -> 0", t, 101, p, True,
            [expect_enrollment(after, created, p)])

    before = after
    after2 = dict(before, is_active=1, mode="verified")
    p = envelope(t, "u", before, after2, "2026-11-06 19:20:21.500", "2026-11-06 19:20:21.000")
    fixture("dbz_enrollment_update_noschema", "alice re-enrolls as verified: UPDATE is_active 0 -> 1, mode", t, 101, p,
            False, [expect_enrollment(after2, created, p)])

    tb = enrollment_table(is_active_boolean=True)
    created_z = "2026-10-20 08:00:00.000001"
    row_z = enrollment_row(102, "course-v1:UniX+AI_101+2026_T1", created_z, True, "verified", 8)
    p = envelope(tb, "r", None, row_z, "2026-10-30 12:00:00.123", "2026-10-30 12:00:00.000", snapshot="true")
    fixture("dbz_enrollment_snapshot_boolean", "initial snapshot READ of Zoë's enrollment; is_active as "
            "boolean (TinyIntOneToBooleanConverter)", tb, 102, p, True, [expect_enrollment(row_z, created_z, p)])

    created_b = "2026-11-02 09:00:00.500000"
    row_b = enrollment_row(103, demo, created_b, 1, "audit", 9)
    p = envelope(t, "d", row_b, None, "2026-11-07 10:00:00.999", "2026-11-07 10:00:00.000")
    fixture("dbz_enrollment_delete", "bob's enrollment row DELETEd: the before-image, now inactive", t, 103, p, True,
            [expect_enrollment(row_b, created_b, p, is_active=False)])
    fixture("dbz_enrollment_delete_noschema", "the same DELETE without schemas", t, 103, p, False,
            [expect_enrollment(row_b, created_b, p, is_active=False)])
    fixture("dbz_enrollment_tombstone", "tombstone after the DELETE (null value)", t, 103, None, True, [],
            ignored="tombstone (null value)")
    fixture("dbz_enrollment_tombstone_noschema", "tombstone after the DELETE (null value)", t, 103, None, False, [],
            ignored="tombstone (null value)")

    tm = enrollment_table(created="milli")
    created_m = "2026-11-03 15:45:10.000000"
    row_m = enrollment_row(104, "ccx-v1:edX+DemoX+Demo_Course+ccx@3", created_m, 1, "audit", 7, created_enc=millis)
    p = envelope(tm, "c", None, row_m, "2026-11-03 15:45:10.042", "2026-11-03 15:45:10.000")
    fixture("dbz_enrollment_insert_datetime_millis", "created as a DATETIME without fraction: "
            "io.debezium.time.Timestamp (milliseconds)", tm, 104, p, True, [expect_enrollment(row_m, created_m, p)])

    tz = enrollment_table(created="zoned")
    created_t = "2026-11-03 16:00:00.654321"
    row_t = enrollment_row(105, "edX/Open_DemoX/edx_demo_course", created_t, 1, "honor", 9, created_enc=zoned)
    p = envelope(tz, "c", None, row_t, "2026-11-03 16:00:00.777", "2026-11-03 16:00:00.655")
    fixture("dbz_enrollment_insert_zoned_timestamp", "created as a TIMESTAMP(6) column: "
            "io.debezium.time.ZonedTimestamp string; legacy course key", tz, 105, p, True,
            [expect_enrollment(row_t, created_t, p)])


# ----- completion_blockcompletion ---------------------------------------------


def completion_row(id_, created, modified, course_key, block_key, block_type, completion, user_id):
    return {"id": id_, "created": micros(created), "modified": micros(modified), "course_key": course_key,
            "block_key": block_key, "block_type": block_type, "completion": completion, "user_id": user_id}


def expect_completion(row, created_text, payload):
    return {"kind": "completion", "user_id": row["user_id"], "course_id": row["course_key"],
            "block_id": row["block_key"], "created": fl.rfc3339(dt(created_text)), "time": time_of(payload)}


def completion_fixtures():
    t = COMPLETION
    demo = "course-v1:edX+DemoX+Demo_Course"
    block = "block-v1:edX+DemoX+Demo_Course+type@problem+block@d1b2c3d4e5f60718293a4b5c6d7e8f90"
    created = "2026-11-01 10:00:00.123456"
    row = completion_row(5001, created, created, demo, block, "problem", 1.0, 7)
    p = envelope(t, "c", None, row, "2026-11-01 10:00:00.321", "2026-11-01 10:00:00.124")
    fixture("dbz_completion_insert", "alice completes a problem (INSERT)", t, 5001, p, True,
            [expect_completion(row, created, p)])
    fixture("dbz_completion_insert_noschema", "the same INSERT without schemas", t, 5001, p, False,
            [expect_completion(row, created, p)])

    vblock = "block-v1:UniX+AI_101+2026_T1+type@video+block@intro_vidéo"
    created_v = "2026-11-02 08:00:00.000001"
    before = completion_row(5002, created_v, created_v, "course-v1:UniX+AI_101+2026_T1", vblock, "video", 0.5, 8)
    after = dict(before, completion=1.0, modified=micros("2026-11-05 09:30:00.500000"))
    p = envelope(t, "u", before, after, "2026-11-05 09:30:00.612", "2026-11-05 09:30:00.500")
    fixture("dbz_completion_update", "Zoë's video completion goes 0.5 -> 1.0: UPDATE completion, modified; "
            "created unchanged; non-ASCII block key", t, 5002, p, True, [expect_completion(after, created_v, p)])

    hblock = "block-v1:edX+DemoX+Demo_Course+type@html+block@030e35c4756a4ddc8d40b95fbbfff4d4"
    created_h = "2025-03-14 15:09:26.535897"
    row_h = completion_row(4000, created_h, created_h, demo, hblock, "html", 1.0, 9)
    p = envelope(t, "r", None, row_h, "2026-10-30 12:00:00.456", "2026-10-30 12:00:00.000", snapshot="last")
    fixture("dbz_completion_snapshot_noschema", "initial snapshot READ of an old completion (snapshot=last)",
            t, 4000, p, False, [expect_completion(row_h, created_h, p)])

    p = envelope(t, "d", row_h, None, "2026-11-10 08:40:00.000", "2026-11-10 08:40:00.000")
    fixture("dbz_completion_delete_ignored", "completion row DELETEd", t, 4000, p, True, [],
            ignored="completion delete (last activity is a maximum; a delete does not lower it)")
    fixture("dbz_completion_tombstone_ignored", "tombstone after the completion DELETE", t, 4000, None, False, [],
            ignored="tombstone (null value)")


# ----- course_overviews_courseoverview ----------------------------------------


def course_row(course_id, display_name, mobile_available, modified, start="2026-09-01 00:00:00.000000",
               version=19, lowest_passing_grade=0.5):
    org, number = course_id.split(":")[1].split("+")[:2]
    return {
        "created": micros(modified),
        "modified": micros(modified),
        "version": version,
        "id": course_id,
        "_location": course_id.replace("course-v1:", "block-v1:") + "+type@course+block@course",
        "display_name": display_name,
        "display_number_with_default": number,
        "display_org_with_default": org,
        "start": micros(start),
        "end": None,
        "course_image_url": f"/asset-v1:{org}+{number}+2026+type@asset+block@images_course_image.jpg",
        "lowest_passing_grade": decimal_bytes(lowest_passing_grade, 2),
        "days_early_for_beta": None,
        "mobile_available": mobile_available,
        "visible_to_staff_only": 0,
        "enrollment_start": None,
        "enrollment_end": None,
        "invitation_only": 0,
        "catalog_visibility": "both",
        "org": org,
        "self_paced": 0,
        "language": "en",
        "certificate_available_date": None,
        "has_highlights": None,
        "entrance_exam_enabled": 0,
    }


def expect_course(row, payload):
    e = {"kind": "course", "course_id": row["id"]}
    if row["display_name"] is not None:
        e["course_name"] = row["display_name"]
    e["mobile_available"] = bool01(row["mobile_available"])
    e["time"] = time_of(payload)
    return e


def course_fixtures():
    t = COURSE
    demo = "course-v1:edX+DemoX+Demo_Course"
    row = course_row(demo, "Demonstration Course", 0, "2026-10-31 12:00:00.000000")
    p = envelope(t, "c", None, row, "2026-10-31 12:00:00.250", "2026-10-31 12:00:00.000")
    fixture("dbz_course_insert", "course overview created (INSERT); mobile_available int16 0; "
            "lowest_passing_grade DECIMAL(5,2) as Connect Decimal bytes", t, demo, p, True, [expect_course(row, p)])

    after = dict(row, display_name="Demonstration Course (2026 edition)", mobile_available=1, version=20,
                 modified=micros("2026-11-04 11:11:11.111111"))
    p = envelope(t, "u", row, after, "2026-11-04 11:11:11.200", "2026-11-04 11:11:11.111")
    fixture("dbz_course_update_noschema", "course renamed and made available on mobile (UPDATE)", t, demo, p, False,
            [expect_course(after, p)])

    uni = "course-v1:UniX+AI_101+2026_T1"
    row_u = course_row(uni, None, 1, "2026-10-01 00:00:00.000000", start="2026-10-05 08:00:00.000000")
    p = envelope(t, "r", None, row_u, "2026-10-30 12:00:00.789", "2026-10-30 12:00:00.000", snapshot="first")
    fixture("dbz_course_snapshot_null_name", "snapshot READ of a course whose display_name is NULL "
            "(name unknown, mobile availability known)", t, uni, p, True, [expect_course(row_u, p)])

    p = envelope(t, "d", after, None, "2026-11-11 12:26:40.000", "2026-11-11 12:26:40.000")
    fixture("dbz_course_delete_ignored", "course overview row DELETEd (the LMS deletes and re-creates "
            "overviews when it refreshes them)", t, demo, p, True, [],
            ignored="course overview delete (overviews are rebuilt; keep what is known)")
    fixture("dbz_course_tombstone_ignored", "tombstone after the course overview DELETE", t, demo, None, False, [],
            ignored="tombstone (null value)")


# ----- auth_user --------------------------------------------------------------


def user_row(id_, username, email, first="", last="", joined="2026-10-01 09:00:00.000000", last_login=None,
             is_active=1):
    return {"id": id_, "password": "!", "last_login": None if last_login is None else micros(last_login),
            "is_superuser": 0, "username": username, "first_name": first, "last_name": last, "email": email,
            "is_staff": 0, "is_active": is_active, "date_joined": micros(joined)}


def expect_user(row, payload, kind="user"):
    return {"kind": kind, "user_id": row["id"], "username": row["username"], "time": time_of(payload)}


def user_fixtures():
    t = USER
    row = user_row(7, "alice", "alice@example.test", "Alice", "Example", joined="2026-10-31 09:00:00.000000")
    p = envelope(t, "c", None, row, "2026-10-31 09:00:00.120", "2026-10-31 09:00:00.000")
    fixture("dbz_user_insert", "alice registers (INSERT into auth_user)", t, 7, p, True, [expect_user(row, p)])

    after = dict(row, username="alice_w", last_login=micros("2026-11-05 08:00:00.424242"))
    p = envelope(t, "u", row, after, "2026-11-05 08:00:00.500", "2026-11-05 08:00:00.424")
    fixture("dbz_user_update_rename_noschema", "alice is renamed alice_w (UPDATE username, last_login)", t, 7, p,
            False, [expect_user(after, p)])

    row_z = user_row(8, "Zoë_李", "zoe@example.test", "Zoë", "Lì", joined="2026-09-30 23:59:59.999999")
    p = envelope(t, "r", None, row_z, "2026-10-30 12:00:00.333", "2026-10-30 12:00:00.000", snapshot="true")
    fixture("dbz_user_snapshot_unicode", "snapshot READ of a user with a unicode username", t, 8, p, True,
            [expect_user(row_z, p)])

    retired = dict(row_z, username="retired__user_4a1b2c3d4e5f60718293a4b5c6d7e8f9",
                   email="retired__user_4a1b2c3d4e5f60718293a4b5c6d7e8f9@retired.invalid",
                   first_name="", last_name="", is_active=0)
    p = envelope(t, "u", row_z, retired, "2026-11-14 10:00:00.100", "2026-11-14 10:00:00.000")
    fixture("dbz_user_update_retired_username", "LMS user retirement scrubs the row (UPDATE to a retired__user_ "
            "username) rather than deleting it: to Debezium it is a rename", t, 8, p, True,
            [expect_user(retired, p)])

    row_b = user_row(9, "bob", "bob@example.test")
    p = envelope(t, "d", row_b, None, "2026-11-15 10:00:00.900", "2026-11-15 10:00:00.000")
    fixture("dbz_user_delete", "bob's auth_user row DELETEd: the user is erased", t, 9, p, True,
            [expect_user(row_b, p, kind="retirement")])
    fixture("dbz_user_tombstone_ignored", "tombstone after the auth_user DELETE", t, 9, None, True, [],
            ignored="tombstone (null value)")


def main():
    fl.reset_dir(OUT)
    enrollment_fixtures()
    completion_fixtures()
    course_fixtures()
    user_fixtures()


if __name__ == "__main__":
    main()
