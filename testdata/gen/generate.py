#!/usr/bin/env python3
"""Event-bus (Avro) and native JSON fixtures, made by the real Open edX producers.

Run through generate.sh (it makes the virtualenv); argument: the repository root.

How the event-bus bytes are produced
------------------------------------
Nothing on the wire is hand-encoded. For every event-bus fixture:

1. The signal data are real ``openedx_events`` attrs objects (``CourseEnrollmentData``,
   ``UserData``, ``UserPersonalData``, ``CourseData``, ``CourseCatalogData``,
   ``CourseScheduleData``, ``TrackingLogData``).
2. The signal is sent as the LMS sends it: ``OpenEdxPublicSignal._send_event_with_metadata``
   (the body of ``send_event``; called directly only so that the ``EventsMetadata``
   id and time are fixed instead of ``uuid1()``/``now()``). Tracking events start one
   step earlier, in event-tracking's real ``EventBusRoutingBackend.send`` (which
   JSON-encodes ``data``/``context`` with its ``DateTimeJSONEncoder`` and builds the
   ``TrackingLogData``); only its ``TRACKING_EVENT_EMITTED.send_event`` call is
   redirected to the same fixed-metadata send.
3. ``openedx_events.apps.general_signal_handler`` (connected by the ``openedx_events``
   app from ``EVENT_BUS_PRODUCER_CONFIG``) calls ``get_producer().send(...)``.
4. ``EVENT_BUS_PRODUCER`` loads edx-event-bus-kafka's real ``KafkaEventProducer``,
   wrapped around a stand-in for ``confluent_kafka.Producer`` whose ``produce()``
   records (topic, key, value, headers) instead of talking to a broker.
5. ``KafkaEventProducer.send`` does the rest with its own code: ``get_full_topic``
   (``EVENT_BUS_TOPIC_PREFIX``), ``extract_event_key``, ``_get_headers_from_metadata``,
   and ``get_serializers``: confluent-kafka's ``AvroSerializer`` for key and value
   (schema from ``AvroSignalSerializer.schema_string()`` / ``extract_key_schema``,
   ``to_dict`` = ``AvroSignalSerializer.to_dict``, ``topic_record_subject_name_strategy``),
   which writes 0x00 + 4-byte big-endian schema id + fastavro ``schemaless_writer``
   output.
6. The one substitution: ``get_schema_registry_client`` returns confluent-kafka's own
   ``MockSchemaRegistryClient``, subclassed so that schema ids are fixed (below)
   instead of counting up, and so that, like a real registry, one schema text gets one
   id under every subject.

Each fixture is then checked by decoding it back with the consumer side of the same
packages (edx-event-bus-kafka's ``get_deserializer`` = ``AvroDeserializer`` +
``AvroSignalDeserializer``, and ``_get_metadata_from_headers``), and with plain
fastavro against the recorded writer schema.

Native JSON fixtures (CloudEvents 1.0 structured mode) take their ``data`` from
``AvroSignalSerializer.to_dict`` of the same kind of signal data, so the JSON carries
exactly the event-bus record.

The Avro schemas in consumer/avroschemas/ are written by openedx-events' own
``generate_avro_schemas`` management command and copied as ``<ce_type>.avsc``.
"""

import copy
import io
import json
import os
import shutil
import struct
import sys
import uuid
from datetime import datetime, timezone
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".."))
OUT_EVENTBUS = os.path.join(ROOT, "testdata", "events", "eventbus")
OUT_JSON = os.path.join(ROOT, "testdata", "events", "json")
OUT_SCHEMAS = os.path.join(ROOT, "consumer", "avroschemas")

# ---------------------------------------------------------------------------
# Topics (see testdata/README.md for where each name comes from)
# ---------------------------------------------------------------------------
TOPIC_PREFIX = "dev"
TOPIC_ENROLLMENT = "learning-course-enrollment-lifecycle"
TOPIC_UNENROLLMENT = "course-unenrollment-lifecycle"
TOPIC_CATALOG = "course-catalog-info-changed"
TOPIC_TRACKING = "analytics"
TOPIC_JSON = "enrollstatus-events"

T_CREATED = "org.openedx.learning.course.enrollment.created.v1"
T_CHANGED = "org.openedx.learning.course.enrollment.changed.v1"
T_UNENROLLED = "org.openedx.learning.course.unenrollment.completed.v1"
T_CATALOG = "org.openedx.content_authoring.course.catalog_info.changed.v1"
T_TRACKING = "org.openedx.analytics.tracking.event.emitted.v1"
SUPPORTED_TYPES = [T_CREATED, T_CHANGED, T_UNENROLLED, T_CATALOG, T_TRACKING]

COMPLETION_EVENT = "edx.completion.block_completion.changed"
VIDEO_EVENT = "edx.video.played"


def _producer_config(topic, key_field):
    return {topic: {"event_key_field": key_field, "enabled": True}}


EVENT_BUS_PRODUCER_CONFIG = {
    T_CREATED: _producer_config(TOPIC_ENROLLMENT, "enrollment.course.course_key"),
    T_CHANGED: _producer_config(TOPIC_ENROLLMENT, "enrollment.course.course_key"),
    T_UNENROLLED: _producer_config(TOPIC_UNENROLLMENT, "enrollment.course.course_key"),
    T_CATALOG: _producer_config(TOPIC_CATALOG, "catalog_info.course_key"),
    T_TRACKING: _producer_config(TOPIC_TRACKING, "tracking_log.name"),
}

# ---------------------------------------------------------------------------
# Capturing stand-in for confluent_kafka.Producer (must exist before django.setup)
# ---------------------------------------------------------------------------
CAPTURED = []


class CapturingProducer:
    """Takes the place of confluent_kafka.Producer: records what would be produced."""

    def produce(self, topic, key=None, value=None, headers=None, on_delivery=None, **kwargs):
        CAPTURED.append({"topic": topic, "key": key, "value": value, "headers": headers})

    def poll(self, timeout=None):
        return 0

    def flush(self, timeout=None):
        return 0


def create_capturing_producer():
    """EVENT_BUS_PRODUCER: the real KafkaEventProducer around the capturing producer."""
    from edx_event_bus_kafka.internal.producer import KafkaEventProducer
    return KafkaEventProducer(CapturingProducer())


# ---------------------------------------------------------------------------
# Minimal Django settings for the producer side of an LMS/CMS
# ---------------------------------------------------------------------------
import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    DEBUG=False,
    USE_TZ=True,
    SECRET_KEY="enrollstatus-fixtures-only",
    INSTALLED_APPS=["openedx_events"],
    EVENTS_SERVICE_NAME="lms",
    EVENT_BUS_PRODUCER=f"{__name__}.create_capturing_producer",
    EVENT_BUS_PRODUCER_CONFIG=EVENT_BUS_PRODUCER_CONFIG,
    EVENT_BUS_TOPIC_PREFIX=TOPIC_PREFIX,
    # Never contacted: the producer is the capturing stand-in and the registry is mocked.
    EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
    EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL="mock://enrollstatus-fixtures",
    EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED=False,
    EVENT_BUS_KAFKA_POLL_INTERVAL_SEC=3600,
    # event-tracking's event-bus backend
    SEND_TRACKING_EVENT_EMITTED_SIGNAL=True,
    EVENT_BUS_TRACKING_LOGS=[COMPLETION_EVENT, VIDEO_EVENT],
    LOGGING_CONFIG=None,
)
django.setup()

import attr  # noqa: E402
import fastavro  # noqa: E402
import openedx_events  # noqa: E402
from confluent_kafka.schema_registry import RegisteredSchema  # noqa: E402
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from django.core.management import call_command  # noqa: E402
from edx_event_bus_kafka.internal import consumer as ebk_consumer  # noqa: E402
from edx_event_bus_kafka.internal import producer as ebk_producer  # noqa: E402
from edx_event_bus_kafka.internal.utils import _get_metadata_from_headers  # noqa: E402
from eventtracking.backends.event_bus import EventBusRoutingBackend  # noqa: E402
from opaque_keys.edx.keys import CourseKey  # noqa: E402
from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED  # noqa: E402
from openedx_events.apps import general_signal_handler  # noqa: E402
from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData  # noqa: E402
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED  # noqa: E402
from openedx_events.data import EventsMetadata  # noqa: E402
from openedx_events.event_bus.avro.serializer import AvroSignalSerializer  # noqa: E402
from openedx_events.learning.data import (  # noqa: E402
    CourseData,
    CourseEnrollmentData,
    UserData,
    UserPersonalData,
)
from openedx_events.learning.signals import (  # noqa: E402
    COURSE_ENROLLMENT_CHANGED,
    COURSE_ENROLLMENT_CREATED,
    COURSE_UNENROLLMENT_COMPLETED,
)
from openedx_events.tooling import OpenEdxPublicSignal  # noqa: E402

SIGNALS = {
    T_CREATED: COURSE_ENROLLMENT_CREATED,
    T_CHANGED: COURSE_ENROLLMENT_CHANGED,
    T_UNENROLLED: COURSE_UNENROLLMENT_COMPLETED,
    T_CATALOG: COURSE_CATALOG_INFO_CHANGED,
    T_TRACKING: TRACKING_EVENT_EMITTED,
}
KEY_FIELDS = {t: next(iter(cfg.values()))["event_key_field"] for t, cfg in EVENT_BUS_PRODUCER_CONFIG.items()}

# ---------------------------------------------------------------------------
# The schema-evolution variant of enrollment.created: CourseEnrollmentData with one
# more optional attribute, declared the way openedx-events declares optional fields
# (default=None, which its schema generator turns into ["null", T] with default null),
# and minor_version 1. The record keeps its name, so only the writer schema differs.
# ---------------------------------------------------------------------------
EvolvedCourseEnrollmentData = attr.make_class(
    "CourseEnrollmentData",
    {"external_reference": attr.ib(type=str, default=None)},
    bases=(CourseEnrollmentData,),
    frozen=True,
)
EVOLVED_FIELD = "external_reference"


def _make_evolved_signal():
    mapping_before = dict(OpenEdxPublicSignal._mapping)
    instances_before = list(OpenEdxPublicSignal.instances)
    signal = OpenEdxPublicSignal(
        event_type=T_CREATED, data={"enrollment": EvolvedCourseEnrollmentData}, minor_version=1)
    # A second signal object of the same type must not replace the real one anywhere.
    OpenEdxPublicSignal._mapping.clear()
    OpenEdxPublicSignal._mapping.update(mapping_before)
    OpenEdxPublicSignal.instances[:] = instances_before
    signal.connect(general_signal_handler)
    return signal


COURSE_ENROLLMENT_CREATED_V1_1 = _make_evolved_signal()

# ---------------------------------------------------------------------------
# Schema registry: confluent-kafka's mock, with fixed ids
# ---------------------------------------------------------------------------


def _value_schema_str(signal):
    return AvroSignalSerializer(signal).schema_string()


def _key_schema_str(signal, key_field):
    return ebk_producer.extract_key_schema(AvroSignalSerializer(signal), key_field)


VALUE_SCHEMA_IDS = {
    T_CREATED: 1,
    T_CHANGED: 2,
    T_UNENROLLED: 3,
    T_CATALOG: 4,
    T_TRACKING: 5,
}
EVOLVED_SCHEMA_ID = 6
COURSE_KEY_SCHEMA_ID = 101
TRACKING_KEY_SCHEMA_ID = 102


def _schema_id_table():
    ids = {}

    def put(schema_str, sid):
        if ids.setdefault(schema_str, sid) != sid:
            raise RuntimeError(f"schema given two ids: {schema_str}")

    for event_type, sid in VALUE_SCHEMA_IDS.items():
        put(_value_schema_str(SIGNALS[event_type]), sid)
    put(_value_schema_str(COURSE_ENROLLMENT_CREATED_V1_1), EVOLVED_SCHEMA_ID)
    for event_type in (T_CREATED, T_CHANGED, T_UNENROLLED, T_CATALOG):
        # one text, {"name": "course_key", "type": "string"}, for every course-keyed type
        put(_key_schema_str(SIGNALS[event_type], KEY_FIELDS[event_type]), COURSE_KEY_SCHEMA_ID)
    put(_key_schema_str(TRACKING_EVENT_EMITTED, KEY_FIELDS[T_TRACKING]), TRACKING_KEY_SCHEMA_ID)
    if len(set(ids.values())) != len(ids):
        raise RuntimeError("two schema texts share an id")
    return ids


class FixtureSchemaRegistry(MockSchemaRegistryClient):
    """confluent-kafka's MockSchemaRegistryClient with ids fixed per schema text."""

    def __init__(self, ids):
        super().__init__({"url": "mock://enrollstatus-fixtures"})
        self.ids = ids
        self.registrations = []

    def register_schema_full_response(self, subject_name, schema, normalize_schemas=False):
        found = self._store.get_registered_schema_by_schema(subject_name, schema)
        if found is not None:
            return found
        if schema.schema_str not in self.ids:
            raise KeyError(f"no fixed id for a schema registered under {subject_name}: {schema.schema_str}")
        sid = self.ids[schema.schema_str]
        latest = self._store.get_latest_version(subject_name)
        version = 1 if latest is None or latest.version is None else latest.version + 1
        self._store.max_id = sid - 1  # _SchemaStore.set assigns max_id + 1
        registered = self._store.set(RegisteredSchema(
            schema_id=sid, guid=str(uuid.uuid5(uuid.NAMESPACE_URL, "enrollstatus-fixtures:" + schema.schema_str)),
            schema=schema, subject=subject_name, version=version))
        self.registrations.append((subject_name, version, sid))
        return registered


REGISTRY = FixtureSchemaRegistry(_schema_id_table())
ebk_producer.get_schema_registry_client = lambda: REGISTRY

# ---------------------------------------------------------------------------
# Deterministic metadata
# ---------------------------------------------------------------------------
_GREGORIAN = datetime(1582, 10, 15, tzinfo=timezone.utc)
_NODE = 0x0242AC110002  # a fixed, locally administered MAC


def uuid1_at(when, clock_seq):
    """The version-1 UUID that uuid.uuid1() would give at `when` on a fixed node."""
    delta = when - _GREGORIAN
    ticks = (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return uuid.UUID(fields=(
        ticks & 0xFFFFFFFF, (ticks >> 32) & 0xFFFF, ((ticks >> 48) & 0x0FFF) | 0x1000,
        ((clock_seq >> 8) & 0x3F) | 0x80, clock_seq & 0xFF, _NODE))


_SEQ = [0x2A00]


def metadata(signal, when, service="lms"):
    _SEQ[0] += 1
    return EventsMetadata(
        event_type=signal.event_type,
        id=uuid1_at(when, _SEQ[0]),
        minorversion=signal.minor_version,
        source=f"openedx/{service}/web",
        sourcehost=f"{service}.example.test",
        time=when,
    )


def T(s):
    return datetime.fromisoformat(s)


# ---------------------------------------------------------------------------
# Sending through the real path and checking what came out
# ---------------------------------------------------------------------------


def send(signal, md, **data):
    """Send a signal as the LMS does, return the one captured Kafka message."""
    before = len(CAPTURED)
    signal._send_event_with_metadata(metadata=md, send_robust=False, **data)
    new = CAPTURED[before:]
    if len(new) != 1:
        # KafkaEventProducer.send logs and swallows its own errors; see the log above.
        raise RuntimeError(f"expected one produced message for {signal.event_type}, got {len(new)}")
    msg = dict(new[0])
    msg["signal"], msg["metadata"], msg["data"] = signal, md, data
    return msg


def send_tracking(name, timestamp, data, context, md):
    """A tracking log through event-tracking's real EventBusRoutingBackend."""
    event = {"name": name, "timestamp": timestamp, "data": data, "context": context}  # as Tracker.emit builds it
    sent = {}

    def send_event(**kwargs):
        sent.update(send(TRACKING_EVENT_EMITTED, md, **kwargs))

    with mock.patch.object(TRACKING_EVENT_EMITTED, "send_event", new=send_event):
        EventBusRoutingBackend().send(event)
    if not sent:
        raise RuntimeError(f"EventBusRoutingBackend did not send {name}")
    return sent


def _frame(data):
    magic, sid = struct.unpack(">bI", data[:5])
    if magic != 0:
        raise RuntimeError(f"bad magic byte {magic}")
    return sid, data[5:]


def check_roundtrip(msg, reader_signal):
    """Decode the captured message with the consumer side of the same packages."""
    value_sid, value_body = _frame(msg["value"])
    key_sid, key_body = _frame(msg["key"])
    headers = list(msg["headers"].items())

    deserializer = ebk_consumer.get_deserializer(reader_signal, REGISTRY)
    decoded = deserializer(msg["value"], SerializationContext(msg["topic"], MessageField.VALUE, headers))
    expected = dict(msg["data"])
    if reader_signal is not msg["signal"]:
        # evolved writer, original reader: the extra attribute is dropped on resolution
        expected = {k: CourseEnrollmentData(**{a.name: getattr(v, a.name) for a in attr.fields(CourseEnrollmentData)})
                    for k, v in expected.items()}
    if decoded != expected:
        raise RuntimeError(f"round trip mismatch:\n{decoded!r}\n!=\n{expected!r}")
    if _get_metadata_from_headers(headers) != msg["metadata"]:
        raise RuntimeError("header round trip mismatch")

    writer = json.loads(REGISTRY.get_schema(value_sid).schema_str)
    record = fastavro.schemaless_reader(io.BytesIO(value_body), fastavro.parse_schema(copy.deepcopy(writer)))
    if record != AvroSignalSerializer(msg["signal"]).to_dict(msg["data"]):
        raise RuntimeError("fastavro decode mismatch")
    key_schema = json.loads(REGISTRY.get_schema(key_sid).schema_str)
    key = fastavro.schemaless_reader(io.BytesIO(key_body), fastavro.parse_schema(copy.deepcopy(key_schema)))
    return writer, value_sid, key_schema, key_sid, key


def eventbus_fixture(name, description, msg, expect, ignored=None, reader_signal=None):
    writer, value_sid, key_schema, key_sid, _ = check_roundtrip(msg, reader_signal or msg["signal"])
    fixture = {
        "name": name,
        "format": "eventbus",
        "description": description,
        "topic": msg["topic"],
        "key_b64": fl.b64(msg["key"]),
        "value_b64": fl.b64(msg["value"]),
        "headers": fl.headers_list(msg["headers"]),
        "writer_schema": writer,
        "schema_id": value_sid,
        "key_schema": key_schema,
        "key_schema_id": key_sid,
        "expect": expect,
    }
    if ignored:
        fixture["ignored"] = ignored
    fl.write_fixture(OUT_EVENTBUS, fixture)


# ---------------------------------------------------------------------------
# Expected domain events
# ---------------------------------------------------------------------------


def expect_enrollment(enrollment, md, is_active=None):
    e = {
        "kind": "enrollment",
        "user_id": enrollment.user.id,
        "username": enrollment.user.pii.username,
        "course_id": str(enrollment.course.course_key),
    }
    if enrollment.course.display_name:  # "" is CourseData's default: not a name
        e["course_name"] = enrollment.course.display_name
    e["mode"] = enrollment.mode
    e["is_active"] = enrollment.is_active if is_active is None else is_active
    e["created"] = fl.rfc3339(enrollment.creation_date)
    e["time"] = fl.rfc3339(md.time)
    e["event_id"] = str(md.id)
    return e


def expect_course(catalog, md):
    return {"kind": "course", "course_id": str(catalog.course_key), "course_name": catalog.name,
            "time": fl.rfc3339(md.time), "event_id": str(md.id)}


def expect_completion(data, md):
    return {"kind": "completion", "user_id": data["user_id"], "course_id": data["course_id"],
            "block_id": data["block_id"], "created": fl.rfc3339(data["created"]),
            "time": fl.rfc3339(md.time), "event_id": str(md.id)}


# ---------------------------------------------------------------------------
# The people and courses of the fixtures
# ---------------------------------------------------------------------------
ALICE = UserData(id=7, is_active=True, pii=UserPersonalData(
    username="alice", email="alice@example.test", name="Alice Example"))
ZOE = UserData(id=8, is_active=True, pii=UserPersonalData(
    username="Zoë_李", email="zoe@example.test", name="Zoë Lì 李"))
BOB = UserData(id=9, is_active=True, pii=UserPersonalData(
    username="bob", email="bob@example.test"))  # name left to its default ""
STAFF = UserData(id=2, is_active=True, pii=UserPersonalData(
    username="staff", email="staff@example.test", name="Course Staff"))

DEMO_KEY = CourseKey.from_string("course-v1:edX+DemoX+Demo_Course")
DEMO = CourseData(course_key=DEMO_KEY, display_name="Demonstration Course",
                  start=T("2026-09-01T00:00:00+00:00"), end=T("2027-06-30T23:59:59+00:00"))
UNICODE_KEY = CourseKey.from_string("course-v1:UniX+AI_101+2026_T1")
UNICODE_COURSE = CourseData(course_key=UNICODE_KEY, display_name="Introducción à l’IA — 人工智能 🚀",
                            start=T("2026-10-05T08:00:00+00:00"))
LEGACY_KEY = CourseKey.from_string("edX/Open_DemoX/edx_demo_course")
LEGACY_COURSE = CourseData(course_key=LEGACY_KEY)  # display_name "", start/end None
CCX_KEY = CourseKey.from_string("ccx-v1:edX+DemoX+Demo_Course+ccx@3")
CCX_COURSE = CourseData(course_key=CCX_KEY, display_name="Demonstration Course (CCX cohort 3)")


def eventbus_fixtures():
    fl.reset_dir(OUT_EVENTBUS)
    fixtures_made = []

    def made(name):
        fixtures_made.append(name)
        return name

    # --- enrollment.created -------------------------------------------------
    enr = CourseEnrollmentData(user=ALICE, course=DEMO, mode="audit", is_active=True,
                               creation_date=T("2026-11-01T10:00:00.123456+00:00"))
    md = metadata(COURSE_ENROLLMENT_CREATED, T("2026-11-01T10:00:00.234567+00:00"))
    eventbus_fixture(made("enrollment_created_basic"),
                     "alice enrolls in the demo course (audit); created_by absent (null)",
                     send(COURSE_ENROLLMENT_CREATED, md, enrollment=enr), [expect_enrollment(enr, md)])

    enr = CourseEnrollmentData(user=ZOE, course=UNICODE_COURSE, mode="verified", is_active=True,
                               creation_date=T("2026-11-01T12:30:00.654321+02:00"), created_by=STAFF)
    md = metadata(COURSE_ENROLLMENT_CREATED, T("2026-11-01T10:30:00.700001+00:00"))
    eventbus_fixture(made("enrollment_created_unicode"),
                     "unicode username and display name; creation_date with a +02:00 offset and "
                     "microseconds; created_by set (the UserData named type reused in a union); "
                     "course end null",
                     send(COURSE_ENROLLMENT_CREATED, md, enrollment=enr), [expect_enrollment(enr, md)])

    enr = CourseEnrollmentData(user=BOB, course=LEGACY_COURSE, mode="honor", is_active=True,
                               creation_date=T("2026-11-02T09:00:00+00:00"))
    md = metadata(COURSE_ENROLLMENT_CREATED, T("2026-11-02T09:00:00+00:00"))
    eventbus_fixture(made("enrollment_created_no_fraction_legacy_key"),
                     "deprecated slash-separated course key; empty display_name (so no course_name); "
                     "creation_date and ce_time without a fraction (isoformat drops .000000); "
                     "pii.name empty; course start/end null",
                     send(COURSE_ENROLLMENT_CREATED, md, enrollment=enr), [expect_enrollment(enr, md)])

    enr = CourseEnrollmentData(user=ALICE, course=CCX_COURSE, mode="audit", is_active=True,
                               creation_date=T("2026-11-03T15:45:10.5+00:00"))
    md = metadata(COURSE_ENROLLMENT_CREATED, T("2026-11-03T15:45:10.500100+00:00"))
    eventbus_fixture(made("enrollment_created_ccx"),
                     "CCX course key (ccx-v1:...+ccx@3); creation_date with a 1-digit-significant fraction",
                     send(COURSE_ENROLLMENT_CREATED, md, enrollment=enr), [expect_enrollment(enr, md)])

    # --- enrollment.changed -------------------------------------------------
    enr = CourseEnrollmentData(user=ALICE, course=DEMO, mode="audit", is_active=False,
                               creation_date=T("2026-11-01T10:00:00.123456+00:00"))
    md = metadata(COURSE_ENROLLMENT_CHANGED, T("2026-11-05T08:15:30.000042+00:00"))
    eventbus_fixture(made("enrollment_changed_deactivated"),
                     "alice's enrollment changed to is_active false (unenrolled)",
                     send(COURSE_ENROLLMENT_CHANGED, md, enrollment=enr), [expect_enrollment(enr, md)])

    enr = CourseEnrollmentData(user=ALICE, course=DEMO, mode="verified", is_active=True,
                               creation_date=T("2026-11-01T10:00:00.123456+00:00"))
    md = metadata(COURSE_ENROLLMENT_CHANGED, T("2026-11-06T19:20:21.222324+00:00"))
    eventbus_fixture(made("enrollment_changed_reactivated"),
                     "alice re-enrolls, upgraded to verified (is_active true); creation_date unchanged",
                     send(COURSE_ENROLLMENT_CHANGED, md, enrollment=enr), [expect_enrollment(enr, md)])

    # --- unenrollment.completed ---------------------------------------------
    enr = CourseEnrollmentData(user=ZOE, course=UNICODE_COURSE, mode="verified", is_active=False,
                               creation_date=T("2026-11-01T12:30:00.654321+02:00"))
    md = metadata(COURSE_UNENROLLMENT_COMPLETED, T("2026-11-07T07:07:07.070707+00:00"))
    eventbus_fixture(made("unenrollment_completed"),
                     "Zoë unenrolls; the LMS sends it after saving is_active false",
                     send(COURSE_UNENROLLMENT_COMPLETED, md, enrollment=enr),
                     [expect_enrollment(enr, md, is_active=False)])

    enr = CourseEnrollmentData(user=BOB, course=DEMO, mode="audit", is_active=True,
                               creation_date=T("2026-11-02T09:00:00.5+00:00"))
    md = metadata(COURSE_UNENROLLMENT_COMPLETED, T("2026-11-08T10:00:00.1+00:00"))
    eventbus_fixture(made("unenrollment_completed_stale_is_active"),
                     "synthetic: an unenrollment.completed whose data still says is_active true; "
                     "the type alone means the enrollment is no longer active",
                     send(COURSE_UNENROLLMENT_COMPLETED, md, enrollment=enr),
                     [expect_enrollment(enr, md, is_active=False)])

    # --- catalog_info.changed -------------------------------------------------
    cat = CourseCatalogData(
        course_key=DEMO_KEY, name="Demonstration Course (2026 edition)",
        schedule_data=CourseScheduleData(
            start=T("2026-09-01T00:00:00+00:00"), pacing="instructor", end=T("2027-06-30T23:59:59+00:00"),
            enrollment_start=T("2026-08-01T00:00:00+00:00"), enrollment_end=T("2026-12-31T00:00:00+00:00")),
        hidden=False, invitation_only=False)
    md = metadata(COURSE_CATALOG_INFO_CHANGED, T("2026-11-04T11:11:11.111111+00:00"), service="cms")
    eventbus_fixture(made("catalog_info_changed_basic"),
                     "Studio renames the demo course (sent by the CMS: source openedx/cms/web)",
                     send(COURSE_CATALOG_INFO_CHANGED, md, catalog_info=cat), [expect_course(cat, md)])

    cat = CourseCatalogData(
        course_key=UNICODE_KEY, name="Introducción à l’IA — 人工智能 🚀 (édition 2)",
        schedule_data=CourseScheduleData(start=T("2026-10-05T08:00:00+00:00"), pacing="self"),
        hidden=True, invitation_only=True)
    md = metadata(COURSE_CATALOG_INFO_CHANGED, T("2026-11-04T12:00:00+00:00"), service="cms")
    eventbus_fixture(made("catalog_info_changed_unicode"),
                     "non-ASCII course name; optional schedule fields null; hidden and invitation_only true",
                     send(COURSE_CATALOG_INFO_CHANGED, md, catalog_info=cat), [expect_course(cat, md)])

    # --- tracking.event.emitted ---------------------------------------------
    block = "block-v1:edX+DemoX+Demo_Course+type@problem+block@d1b2c3d4e5f60718293a4b5c6d7e8f90"
    created = T("2026-11-01T10:00:00.123456+00:00")
    data = completion_data(ALICE.id, DEMO_KEY, block, "problem", 1.0, modified=created, created=created)
    emitted = T("2026-11-01T10:00:00.130001+00:00")
    md = metadata(TRACKING_EVENT_EMITTED, T("2026-11-01T10:00:00.131313+00:00"))
    eventbus_fixture(made("tracking_completion_created"),
                     "a new block completion (edx-completion submit_completion -> tracker.emit), "
                     "data/context JSON strings made by event-tracking's EventBusRoutingBackend",
                     send_tracking(COMPLETION_EVENT, emitted, data, server_context(ALICE, DEMO_KEY, block), md),
                     [expect_completion(data, md)])

    block2 = "block-v1:UniX+AI_101+2026_T1+type@video+block@intro_vidéo"
    data = completion_data(ZOE.id, UNICODE_KEY, block2, "video", 0.5,
                           modified=T("2026-11-05T09:30:00.5+00:00"), created=T("2026-11-02T08:00:00.000001+00:00"))
    md = metadata(TRACKING_EVENT_EMITTED, T("2026-11-05T09:30:00.600000+00:00"))
    eventbus_fixture(made("tracking_completion_updated"),
                     "an existing completion changed (0.5): created is days before modified; the "
                     "block id has a non-ASCII character, which the JSON string carries \\u-escaped",
                     send_tracking(COMPLETION_EVENT, T("2026-11-05T09:30:00.55+00:00"), data,
                                   server_context(ZOE, UNICODE_KEY, block2), md),
                     [expect_completion(data, md)])

    md = metadata(TRACKING_EVENT_EMITTED, T("2026-11-01T10:05:00.5+00:00"))
    video_block = "block-v1:edX+DemoX+Demo_Course+type@video+block@0b9e39477cf34507a7a48f74be381fdd"
    eventbus_fixture(made("tracking_video_played_ignored"),
                     "another tracking event on the same topic: not a completion",
                     send_tracking(VIDEO_EVENT, T("2026-11-01T10:05:00.4+00:00"),
                                   {"id": video_block, "code": "html5", "currentTime": 12.5, "duration": 120.0},
                                   server_context(ALICE, DEMO_KEY, video_block), md),
                     [], ignored=f"tracking event {VIDEO_EVENT!r} is not {COMPLETION_EVENT!r}")

    # --- schema evolution -----------------------------------------------------
    enr = EvolvedCourseEnrollmentData(user=ALICE, course=DEMO, mode="audit", is_active=True,
                                      creation_date=T("2026-11-09T10:00:00.999999+00:00"),
                                      external_reference="crm-0042")
    md = metadata(COURSE_ENROLLMENT_CREATED_V1_1, T("2026-11-09T10:00:01.000001+00:00"))
    eventbus_fixture(made("enrollment_created_evolved_minor1"),
                     f"schema evolution: writer schema id {EVOLVED_SCHEMA_ID} adds the optional "
                     f"CourseEnrollmentData.{EVOLVED_FIELD} (['null','string'], default null), set here; "
                     "ce_minorversion 1. Resolve with the writer schema (registry) against the known one.",
                     send(COURSE_ENROLLMENT_CREATED_V1_1, md, enrollment=enr), [expect_enrollment(enr, md)],
                     reader_signal=COURSE_ENROLLMENT_CREATED)

    enr = EvolvedCourseEnrollmentData(user=BOB, course=DEMO, mode="audit", is_active=True,
                                      creation_date=T("2026-11-09T11:00:00.25+00:00"))
    md = metadata(COURSE_ENROLLMENT_CREATED_V1_1, T("2026-11-09T11:00:00.3+00:00"))
    eventbus_fixture(made("enrollment_created_evolved_minor1_null"),
                     f"schema evolution as above with {EVOLVED_FIELD} null (one trailing 0x00 byte "
                     "beyond what the original schema reads)",
                     send(COURSE_ENROLLMENT_CREATED_V1_1, md, enrollment=enr), [expect_enrollment(enr, md)],
                     reader_signal=COURSE_ENROLLMENT_CREATED)
    return fixtures_made


def completion_data(user_id, course_key, block_id, block_type, completion, modified, created):
    """The dict completion.models.BlockCompletion.emit_tracking_log passes to tracker.emit."""
    return {
        "user_id": user_id,
        "course_id": str(course_key),
        "block_id": str(block_id),
        "block_type": block_type,
        "completion": completion,
        "modified": modified,
        "created": created,
    }


def server_context(user, course_key, block_id):
    """A tracking context of the kind the LMS attaches to server events (illustrative)."""
    return {
        "course_id": str(course_key),
        "org_id": course_key.org,
        "enterprise_uuid": "",
        "user_id": user.id,
        "username": user.pii.username,
        "path": f"/courses/{course_key}/xblock/{block_id}/handler/xmodule_handler/problem_check",
        "host": "lms.example.test",
        "ip": "192.0.2.10",
        "agent": "Mozilla/5.0 (X11; Linux x86_64) Fixture/1.0",
        "session": "0123456789abcdef0123456789abcdef",
        "client_id": None,
        "referer": "",
        "accept_language": "en-US,en;q=0.9",
        "module": {"usage_key": str(block_id)},
    }


# ---------------------------------------------------------------------------
# Native JSON (CloudEvents 1.0, structured mode)
# ---------------------------------------------------------------------------


def cloudevent(ce_type, ce_id, when, data, source="openedx/lms/web", time_text=None):
    return {
        "specversion": "1.0",
        "type": ce_type,
        "source": source,
        "id": ce_id,
        "time": time_text or when.isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


def json_fixture(name, description, key, ce, expect, ignored=None):
    value = json.dumps(ce, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    fixture = {
        "name": name,
        "format": "json",
        "description": description,
        "topic": f"{TOPIC_PREFIX}-{TOPIC_JSON}",
        "key_b64": fl.b64(key),
        "value_b64": fl.b64(value),
        "headers": [{"key": "content-type", "value": "application/cloudevents+json; charset=UTF-8"}],
        "expect": expect,
    }
    if ignored:
        fixture["ignored"] = ignored
    fl.write_fixture(OUT_JSON, fixture)


def signal_data(signal, **data):
    return AvroSignalSerializer(signal).to_dict(data)


def json_fixtures():
    fl.reset_dir(OUT_JSON)
    seq = [0x3B00]

    def ce_meta(when):
        seq[0] += 1
        md = EventsMetadata(event_type="x", id=uuid1_at(when, seq[0]), time=when.astimezone(timezone.utc),
                            source="openedx/lms/web", sourcehost="lms.example.test")
        return md

    # enrollment.created: time with "Z"
    enr = CourseEnrollmentData(user=ALICE, course=DEMO, mode="audit", is_active=True,
                               creation_date=T("2026-11-01T10:00:00.123456+00:00"))
    md = ce_meta(T("2026-11-01T10:00:00.234567+00:00"))
    json_fixture("json_enrollment_created", "enrollment.created as a CloudEvent; time written with Z",
                 str(DEMO_KEY), cloudevent(T_CREATED, str(md.id), md.time,
                                           signal_data(COURSE_ENROLLMENT_CREATED, enrollment=enr),
                                           time_text="2026-11-01T10:00:00.234567Z"),
                 [expect_enrollment(enr, md)])

    enr = CourseEnrollmentData(user=ZOE, course=UNICODE_COURSE, mode="verified", is_active=False,
                               creation_date=T("2026-11-01T12:30:00.654321+02:00"), created_by=STAFF)
    md = ce_meta(T("2026-11-05T08:15:30.5+00:00"))
    json_fixture("json_enrollment_changed", "enrollment.changed to inactive; unicode; time with +00:00",
                 str(UNICODE_KEY), cloudevent(T_CHANGED, str(md.id), md.time,
                                              signal_data(COURSE_ENROLLMENT_CHANGED, enrollment=enr)),
                 [expect_enrollment(enr, md)])

    enr = CourseEnrollmentData(user=ALICE, course=DEMO, mode="verified", is_active=False,
                               creation_date=T("2026-11-01T10:00:00.123456+00:00"))
    md = ce_meta(T("2026-11-07T07:07:07+00:00"))
    json_fixture("json_unenrollment_completed", "unenrollment.completed; time with a -05:00 offset",
                 str(DEMO_KEY), cloudevent(T_UNENROLLED, str(md.id), md.time,
                                           signal_data(COURSE_UNENROLLMENT_COMPLETED, enrollment=enr),
                                           time_text="2026-11-07T02:07:07-05:00"),
                 [expect_enrollment(enr, md, is_active=False)])

    cat = CourseCatalogData(
        course_key=DEMO_KEY, name="Demonstration Course (2026 edition)",
        schedule_data=CourseScheduleData(start=T("2026-09-01T00:00:00+00:00"), pacing="instructor"))
    md = ce_meta(T("2026-11-04T11:11:11.111111+00:00"))
    json_fixture("json_catalog_info_changed", "catalog_info.changed (from the CMS)",
                 str(DEMO_KEY), cloudevent(T_CATALOG, str(md.id), md.time,
                                           signal_data(COURSE_CATALOG_INFO_CHANGED, catalog_info=cat),
                                           source="openedx/cms/web"),
                 [expect_course(cat, md)])

    block = "block-v1:edX+DemoX+Demo_Course+type@problem+block@d1b2c3d4e5f60718293a4b5c6d7e8f90"
    created = T("2026-11-01T10:00:00.123456+00:00")
    cdata = completion_data(ALICE.id, DEMO_KEY, block, "problem", 1.0, modified=created, created=created)
    encoded = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in cdata.items()}
    ctx = server_context(ALICE, DEMO_KEY, block)
    md = ce_meta(T("2026-11-01T10:00:00.131313+00:00"))
    json_fixture("json_tracking_completion_string",
                 "tracking event with data and context as JSON strings (as on the event bus)",
                 COMPLETION_EVENT, cloudevent(T_TRACKING, str(md.id), md.time, {"tracking_log": {
                     "name": COMPLETION_EVENT, "timestamp": "2026-11-01T10:00:00.130001+00:00",
                     "data": json.dumps(encoded), "context": json.dumps(ctx)}}),
                 [expect_completion(cdata, md)])

    created = T("2026-11-02T08:00:00.000001+00:00")
    cdata = completion_data(ZOE.id, UNICODE_KEY, "block-v1:UniX+AI_101+2026_T1+type@html+block@welcome",
                            "html", 1.0, modified=T("2026-11-02T08:00:00.000001+00:00"), created=created)
    encoded = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in cdata.items()}
    encoded["created"] = "2026-11-02T09:00:00.000001+01:00"  # same instant, another offset
    encoded["modified"] = "2026-11-02T08:00:00.000001Z"
    md = ce_meta(T("2026-11-02T08:00:00.2+00:00"))
    json_fixture("json_tracking_completion_object",
                 "tracking event with data and context as JSON objects; created with a +01:00 offset",
                 COMPLETION_EVENT, cloudevent(T_TRACKING, str(md.id), md.time, {"tracking_log": {
                     "name": COMPLETION_EVENT, "timestamp": "2026-11-02T08:00:00.1+00:00",
                     "data": encoded, "context": server_context(ZOE, UNICODE_KEY, cdata["block_id"])}}),
                 [expect_completion(cdata, md)])

    md = ce_meta(T("2026-11-01T10:05:00.5+00:00"))
    json_fixture("json_tracking_other_ignored", "a tracking event that is not a completion",
                 VIDEO_EVENT, cloudevent(T_TRACKING, str(md.id), md.time, {"tracking_log": {
                     "name": VIDEO_EVENT, "timestamp": "2026-11-01T10:05:00.4+00:00",
                     "data": {"id": "block-v1:edX+DemoX+Demo_Course+type@video+block@0b9e39477cf34507a7a48f74be381fdd",
                              "currentTime": 12.5}, "context": {"course_id": str(DEMO_KEY)}}}),
                 [], ignored=f"tracking event {VIDEO_EVENT!r} is not {COMPLETION_EVENT!r}")

    md = ce_meta(T("2026-11-04T12:00:00.000500+00:00"))
    json_fixture("json_course_v1", "enrollstatus.course.v1 with every field",
                 str(DEMO_KEY), cloudevent("enrollstatus.course.v1", str(md.id), md.time, {
                     "course_key": str(DEMO_KEY), "display_name": "Demonstration Course",
                     "mobile_available": True}, source="enrollstatus/tests"),
                 [{"kind": "course", "course_id": str(DEMO_KEY), "course_name": "Demonstration Course",
                   "mobile_available": True, "time": fl.rfc3339(md.time), "event_id": str(md.id)}])

    md = ce_meta(T("2026-11-04T12:30:00+00:00"))
    json_fixture("json_course_v1_mobile_only",
                 "enrollstatus.course.v1 without display_name: only mobile availability is known",
                 str(UNICODE_KEY), cloudevent("enrollstatus.course.v1", str(md.id), md.time, {
                     "course_key": str(UNICODE_KEY), "mobile_available": False}, source="enrollstatus/tests",
                     time_text="2026-11-04T12:30:00Z"),
                 [{"kind": "course", "course_id": str(UNICODE_KEY), "mobile_available": False,
                   "time": fl.rfc3339(md.time), "event_id": str(md.id)}])

    md = ce_meta(T("2026-11-10T00:00:00.000001+00:00"))
    json_fixture("json_user_retired", "enrollstatus.user.retired.v1 (right to be forgotten)",
                 "8", cloudevent("enrollstatus.user.retired.v1", str(md.id), md.time, {
                     "user_id": ZOE.id, "username": ZOE.pii.username}, source="enrollstatus/tests"),
                 [{"kind": "retirement", "user_id": ZOE.id, "username": ZOE.pii.username,
                   "time": fl.rfc3339(md.time), "event_id": str(md.id)}])

    md = ce_meta(T("2026-11-10T01:00:00+00:00"))
    json_fixture("json_unknown_type_ignored", "a CloudEvent of a type the projection does not use",
                 str(DEMO_KEY), cloudevent("org.openedx.learning.certificate.created.v1", str(md.id), md.time,
                                           {"certificate": {"mode": "verified"}}),
                 [], ignored="unknown event type org.openedx.learning.certificate.created.v1")


# ---------------------------------------------------------------------------
# consumer/avroschemas/<ce_type>.avsc, by openedx-events' generate_avro_schemas
# ---------------------------------------------------------------------------


def avro_schemas():
    package_dir = os.path.join(os.path.dirname(openedx_events.__file__), "event_bus", "avro", "tests", "schemas")
    if os.path.isdir(package_dir):
        shutil.rmtree(package_dir)  # the command asks before overwriting; the wheel ships none
    call_command("generate_avro_schemas", *SUPPORTED_TYPES)
    os.makedirs(OUT_SCHEMAS, exist_ok=True)
    for name in os.listdir(OUT_SCHEMAS):
        if name.endswith(".avsc"):
            os.remove(os.path.join(OUT_SCHEMAS, name))
    for event_type in SUPPORTED_TYPES:
        src = os.path.join(package_dir, event_type.replace(".", "+") + "_schema.avsc")
        with open(src, "rb") as f:
            text = f.read()
        if json.loads(text) != json.loads(_value_schema_str(SIGNALS[event_type])):
            raise RuntimeError(f"{src} differs from the schema the producer registers")
        with open(os.path.join(OUT_SCHEMAS, event_type + ".avsc"), "wb") as f:
            f.write(text)


def main():
    avro_schemas()
    eventbus_fixtures()
    json_fixtures()
    expected = {(s, v, i) for s, v, i in REGISTRY.registrations}
    print(f"generate.py: openedx-events {openedx_events.__version__}; registered subjects:", file=sys.stderr)
    for subject, version, sid in sorted(expected):
        print(f"  {subject} v{version} -> id {sid}", file=sys.stderr)


if __name__ == "__main__":
    main()
