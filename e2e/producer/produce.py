#!/usr/bin/env python3
"""Produce a workload to Kafka with the REAL Open edX event-bus producer.

Every message is made by edx-event-bus-kafka's KafkaEventProducer.send() (created with
create_producer() through openedx-events' get_producer(), as the LMS does), serialized by
openedx-events' AvroSignalSerializer and confluent-kafka's AvroSerializer (schemas are
registered with a schema registry, whose ids go into the Confluent framing), with the
CloudEvent headers that edx-event-bus-kafka writes. Nothing on the wire is made here.

    produce.py --bootstrap 127.0.0.1:19092 --registry http://127.0.0.1:PORT --history history.jsonl

history.jsonl (or "-" for stdin): one event per line, in a neutral form:

    {"type": "enrollment.created", "event_id": "uuid", "time": "2026-11-01T10:00:00.123456+00:00",
     "user_id": 7, "username": "u7", "course_id": "course-v1:Org+C1+Run", "course_name": "Name",
     "mode": "audit", "is_active": true, "creation_date": "2026-11-01T10:00:00.123456+00:00",
     "block_id": "block-v1:Org+C1+Run+type@problem+block@p1"}

type is one of enrollment.created, enrollment.changed, unenrollment.completed,
catalog_info.changed, completion, tracking.other. See e2e/README.md for every field and
its default. The same event_id sent twice gives two messages with the same ce_id (a real
duplicate). The event time (ce_time) is `time`.

Exit status: 0 when every event was acknowledged by the broker; 1 when any event failed
(serialization, registry or delivery error, or not acknowledged before --flush-timeout);
2 for bad input or setup (unreachable registry, missing topic).
A JSON summary is printed on stdout at the end.
"""

import argparse
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timezone

# Where the LMS (and Studio) publish these signals, in the shape of the platform's
# EVENT_BUS_PRODUCER_CONFIG (topic names without EVENT_BUS_TOPIC_PREFIX). Sources: see
# e2e/README.md ("Topics and keys").
ENROLLMENT_TOPIC = "learning-course-enrollment-lifecycle"
PRODUCER_CONFIG = {
    "org.openedx.learning.course.enrollment.created.v1": {
        ENROLLMENT_TOPIC: {"event_key_field": "enrollment.course.course_key", "enabled": True},
    },
    "org.openedx.learning.course.enrollment.changed.v1": {
        ENROLLMENT_TOPIC: {"event_key_field": "enrollment.course.course_key", "enabled": True},
    },
    "org.openedx.learning.course.unenrollment.completed.v1": {
        "course-unenrollment-lifecycle": {"event_key_field": "enrollment.course.course_key", "enabled": True},
    },
    "org.openedx.content_authoring.course.catalog_info.changed.v1": {
        "course-catalog-info-changed": {"event_key_field": "catalog_info.course_key", "enabled": True},
    },
    "org.openedx.analytics.tracking.event.emitted.v1": {
        "analytics": {"event_key_field": "tracking_log.name", "enabled": True},
    },
}

TYPES = {
    "enrollment.created": "org.openedx.learning.course.enrollment.created.v1",
    "enrollment.changed": "org.openedx.learning.course.enrollment.changed.v1",
    "unenrollment.completed": "org.openedx.learning.course.unenrollment.completed.v1",
    "catalog_info.changed": "org.openedx.content_authoring.course.catalog_info.changed.v1",
    "completion": "org.openedx.analytics.tracking.event.emitted.v1",
    "tracking.other": "org.openedx.analytics.tracking.event.emitted.v1",
}

COMPLETION_EVENT_NAME = "edx.completion.block_completion.changed"  # completion/models.py
DEFAULT_OTHER_TRACKING_NAME = "edx.ui.lms.link_clicked"

log = logging.getLogger("produce")


class InputError(Exception):
    pass


class SetupError(Exception):
    pass


def configure_django(args):
    """Configure Django in-process the way an LMS settings file would for the event bus."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="enrollstatus-e2e",
        USE_TZ=True,
        INSTALLED_APPS=["openedx_events"],  # validates EVENT_BUS_PRODUCER_CONFIG on setup
        SERVICE_VARIANT="lms",
        EVENT_BUS_PRODUCER="edx_event_bus_kafka.create_producer",
        EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=args.bootstrap,
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL=args.registry,
        EVENT_BUS_TOPIC_PREFIX=args.topic_prefix,
        # one INFO line per delivered message costs more than producing it
        EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED=False,
        EVENT_BUS_KAFKA_POLL_INTERVAL_SEC=0.2,
        EVENT_BUS_PRODUCER_CONFIG=args.producer_config,
        LOGGING_CONFIG=None,
    )
    django.setup()


# ---------------------------------------------------------------------------------------
# history -> (signal, event_data, metadata)


def parse_time(value, field):
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if not isinstance(value, str) or not value:
        raise InputError(f"{field}: expected an ISO-8601 string, got {value!r}")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise InputError(f"{field}: {e}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso(dt):
    """As eventtracking's DateTimeJSONEncoder writes datetimes: UTC, isoformat()."""
    return dt.astimezone(timezone.utc).isoformat()


class Builder:
    """Turns neutral history lines into openedx-events data objects and metadata."""

    def __init__(self, sourcehost):
        from opaque_keys.edx.keys import CourseKey
        from openedx_events import data as oe_data
        from openedx_events.analytics import data as analytics_data
        from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED
        from openedx_events.content_authoring import data as ca_data
        from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
        from openedx_events.learning import data as learning_data
        from openedx_events.learning.signals import (
            COURSE_ENROLLMENT_CHANGED,
            COURSE_ENROLLMENT_CREATED,
            COURSE_UNENROLLMENT_COMPLETED,
        )

        self.CourseKey = CourseKey
        self.oe = oe_data
        self.ld = learning_data
        self.ca = ca_data
        self.an = analytics_data
        self.signals = {
            "enrollment.created": COURSE_ENROLLMENT_CREATED,
            "enrollment.changed": COURSE_ENROLLMENT_CHANGED,
            "unenrollment.completed": COURSE_UNENROLLMENT_COMPLETED,
            "catalog_info.changed": COURSE_CATALOG_INFO_CHANGED,
            "completion": TRACKING_EVENT_EMITTED,
            "tracking.other": TRACKING_EVENT_EMITTED,
        }
        for t, signal in self.signals.items():
            assert signal.event_type == TYPES[t], (t, signal.event_type)
        self.sourcehost = sourcehost
        self._keys = {}

    def course_key(self, e):
        cid = e.get("course_id")
        if not cid:
            raise InputError("course_id is required")
        k = self._keys.get(cid)
        if k is None:
            try:
                k = self._keys[cid] = self.CourseKey.from_string(cid)
            except Exception as ex:  # opaque_keys.InvalidKeyError
                raise InputError(f"course_id {cid!r}: {ex}") from None
        return k

    @staticmethod
    def user_id(e):
        uid = e.get("user_id")
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise InputError(f"user_id: expected an integer, got {uid!r}")
        return uid

    def build(self, e):
        t = e.get("type")
        if t not in self.signals:
            raise InputError(f"type: expected one of {sorted(self.signals)}, got {t!r}")
        signal = self.signals[t]
        when = parse_time(e["time"], "time") if "time" in e else datetime.now(timezone.utc)
        try:
            event_id = uuid.UUID(str(e["event_id"])) if e.get("event_id") else uuid.uuid1()
        except ValueError:
            raise InputError(f"event_id: not a UUID: {e.get('event_id')!r}") from None
        source = e.get("source") or ("openedx/cms/web" if t == "catalog_info.changed" else "openedx/lms/web")
        metadata = self.oe.EventsMetadata(
            event_type=signal.event_type,
            id=event_id,
            time=when,
            source=source,
            sourcehost=e.get("sourcehost") or self.sourcehost,
        )
        if t in ("enrollment.created", "enrollment.changed", "unenrollment.completed"):
            data = {"enrollment": self.enrollment(e, t, when)}
        elif t == "catalog_info.changed":
            data = {"catalog_info": self.catalog_info(e, when)}
        elif t == "completion":
            data = {"tracking_log": self.completion(e, when)}
        else:
            data = {"tracking_log": self.other_tracking(e, when)}
        return signal, data, metadata

    def enrollment(self, e, t, when):
        ld = self.ld
        username = e.get("username") or f"user{self.user_id(e)}"
        user = ld.UserData(
            id=self.user_id(e),
            is_active=bool(e.get("user_is_active", True)),
            pii=ld.UserPersonalData(
                username=username,
                email=e.get("email") or f"{username}@example.com",
                name=e.get("name") or "",
            ),
        )
        course = ld.CourseData(
            course_key=self.course_key(e),
            display_name=e.get("course_name") or "",
            start=parse_time(e["course_start"], "course_start") if e.get("course_start") else None,
            end=parse_time(e["course_end"], "course_end") if e.get("course_end") else None,
        )
        is_active = e.get("is_active", t != "unenrollment.completed")
        return ld.CourseEnrollmentData(
            user=user,
            course=course,
            mode=e.get("mode") or "audit",
            is_active=bool(is_active),
            creation_date=parse_time(e["creation_date"], "creation_date") if e.get("creation_date") else when,
            created_by=None,
        )

    def catalog_info(self, e, when):
        ca = self.ca
        return ca.CourseCatalogData(
            course_key=self.course_key(e),
            name=e.get("course_name") or "",
            schedule_data=ca.CourseScheduleData(
                start=parse_time(e["course_start"], "course_start") if e.get("course_start") else when,
                pacing=e.get("pacing") or "instructor",
                end=parse_time(e["course_end"], "course_end") if e.get("course_end") else None,
            ),
            hidden=bool(e.get("hidden", False)),
            invitation_only=bool(e.get("invitation_only", False)),
        )

    def context(self, e, course_key, user_id):
        # the server-side tracking context the LMS adds to an event (a subset)
        return json.dumps({
            "user_id": user_id,
            "username": e.get("username") or "",
            "course_id": str(course_key),
            "org_id": course_key.org,
            "path": e.get("path") or "/courseware/e2e",
            "host": e.get("host") or "lms.e2e.local",
        })

    def completion(self, e, when):
        key = self.course_key(e)
        uid = self.user_id(e)
        block_id = e.get("block_id")
        if not block_id:
            raise InputError("block_id is required for a completion")
        block_type = e.get("block_type")
        if not block_type:
            block_type = block_id.split("type@", 1)[1].split("+", 1)[0] if "type@" in block_id else "problem"
        created = parse_time(e["created"], "created") if e.get("created") else when
        modified = parse_time(e["modified"], "modified") if e.get("modified") else when
        # exactly the dict completion.models.BlockCompletion.emit_tracking_log() passes to
        # tracker.emit, JSON-encoded by eventtracking's event-bus backend
        payload = {
            "user_id": uid,
            "course_id": str(key),
            "block_id": block_id,
            "block_type": block_type,
            "completion": float(e.get("completion", 1.0)),
            "modified": iso(modified),
            "created": iso(created),
        }
        return self.an.TrackingLogData(
            name=COMPLETION_EVENT_NAME,
            timestamp=when,
            data=json.dumps(payload),
            context=self.context(e, key, uid),
        )

    def other_tracking(self, e, when):
        key = self.course_key(e) if e.get("course_id") else None
        uid = e.get("user_id")
        data = e.get("data")
        if data is None:
            data = {"user_id": uid, "course_id": str(key) if key else None}
        return self.an.TrackingLogData(
            name=e.get("name") or DEFAULT_OTHER_TRACKING_NAME,
            timestamp=when,
            data=data if isinstance(data, str) else json.dumps(data),
            context=self.context(e, key, uid) if key else json.dumps({"user_id": uid}),
        )


def read_history(path, builder, routes, limit=None):
    """Returns [(signal, topic, key_field, data, metadata, line_no)], all validated."""
    f = sys.stdin if path == "-" else open(path, encoding="utf-8")
    out = []
    try:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                e = json.loads(line)
                if not isinstance(e, dict):
                    raise InputError("not a JSON object")
                signal, data, metadata = builder.build(e)
            except (InputError, ValueError, KeyError, TypeError) as ex:
                raise InputError(f"{path}:{n}: {ex}") from None
            for topic, key_field in routes[e["type"]]:
                out.append((signal, topic, key_field, data, metadata, n))
            if limit and len(out) >= limit:
                break
    finally:
        if f is not sys.stdin:
            f.close()
    return out


# ---------------------------------------------------------------------------------------
# delivery accounting


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.queued = 0
        self.delivered = 0
        self.failed = 0
        self.errors = Counter()
        self.per_topic = Counter()
        self.per_partition = Counter()
        self.deliveries = None  # open file for --deliveries


class CountingProducer:
    """Wraps the confluent_kafka.Producer inside KafkaEventProducer to count deliveries.

    It only chains a callback to each produce(); the message, headers, key, serializers,
    topic and the edx-event-bus-kafka callback are untouched.
    """

    def __init__(self, inner, stats):
        self._inner = inner
        self._stats = stats

    def produce(self, topic, *args, on_delivery=None, headers=None, **kwargs):
        st = self._stats
        ce_id = (headers or {}).get("ce_id", b"").decode() if isinstance(headers, dict) else ""

        def cb(err, msg):
            with st.lock:
                if err is None:
                    st.delivered += 1
                    st.per_topic[msg.topic()] += 1
                    st.per_partition[f"{msg.topic()}/{msg.partition()}"] += 1
                    if st.deliveries:
                        st.deliveries.write(json.dumps({"event_id": ce_id, "topic": msg.topic(),
                                                        "partition": msg.partition(),
                                                        "offset": msg.offset()}) + "\n")
                else:
                    st.failed += 1
                    st.errors[str(err)] += 1
            if on_delivery is not None:
                on_delivery(err, msg)

        self._inner.produce(topic, *args, on_delivery=cb, headers=headers, **kwargs)
        with st.lock:
            st.queued += 1

    def __len__(self):
        return len(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class ErrorLogCounter(logging.Handler):
    """Counts and shows (the first few) errors that edx-event-bus-kafka logs instead of raising."""

    def __init__(self, show=5, traceback=False):
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.show = show
        self.traceback = traceback

    def emit(self, record):
        self.count += 1
        if self.count <= self.show:
            # the message names the error, topic, key and event; the traceback only with -v
            msg = self.format(record) if self.traceback else record.getMessage()[:600]
            sys.stderr.write("produce: producer error: " + msg + "\n")
        elif self.count == self.show + 1:
            sys.stderr.write("produce: further producer errors are counted, not shown\n")


# ---------------------------------------------------------------------------------------


def check_registry(url):
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/subjects", timeout=10) as r:
            r.read()
    except (urllib.error.URLError, OSError) as e:
        raise SetupError(f"schema registry {url} unreachable: {e}") from None


def check_topics(producer, topics, timeout):
    try:
        md = producer.list_topics(timeout=timeout)
    except Exception as e:  # confluent_kafka.KafkaException
        raise SetupError(f"cannot read topic metadata (broker unreachable?): {e}; "
                         "--no-topic-check produces anyway (the producer retries until --flush-timeout)") from None
    missing = sorted(t for t in topics if t not in md.topics or md.topics[t].error is not None)
    if missing:
        hint = "; ".join(f"scripts/kafka.sh create-topic {t} N" for t in missing)
        raise SetupError(f"topic(s) missing on the broker (auto-creation is off): {missing}. "
                         f"Create them: {hint}")
    return {t: len(md.topics[t].partitions) for t in topics}


def build_routes(args):
    cfg = json.loads(json.dumps(PRODUCER_CONFIG))
    for r in args.route or []:
        # TYPE=TOPIC[,KEYFIELD]: replace where that type goes
        try:
            short, rest = r.split("=", 1)
            topic, _, key_field = rest.partition(",")
            event_type = TYPES[short]
        except (ValueError, KeyError):
            raise SetupError(f"--route {r!r}: expected TYPE=TOPIC[,KEY_FIELD] with TYPE in {sorted(TYPES)}") from None
        old = next(iter(cfg[event_type].values()))
        cfg[event_type] = {topic: {"event_key_field": key_field or old["event_key_field"], "enabled": True}}
    args.producer_config = cfg
    routes = {}
    for short, event_type in TYPES.items():
        routes[short] = [(topic, c["event_key_field"]) for topic, c in cfg[event_type].items() if c["enabled"]]
    return routes


def dump_schemas(directory, routes):
    """Write the Avro schemas exactly as the real serializers register them."""
    from edx_event_bus_kafka.internal.producer import extract_key_schema, get_signal_serializer
    from openedx_events.tooling import OpenEdxPublicSignal

    os.makedirs(directory, exist_ok=True)
    for short, event_type in TYPES.items():
        signal = OpenEdxPublicSignal.get_signal_by_type(event_type)
        ser = get_signal_serializer(signal)
        for _topic, key_field in routes[short]:
            base = event_type.replace(".", "+")
            with open(os.path.join(directory, f"{base}.value.avsc"), "w", encoding="utf-8") as f:
                f.write(ser.schema_string() + "\n")
            with open(os.path.join(directory, f"{base}.key.avsc"), "w", encoding="utf-8") as f:
                f.write(extract_key_schema(ser, key_field) + "\n")
    print(json.dumps({"schemas": sorted(os.listdir(directory))}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:19092", help="EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS")
    ap.add_argument("--registry", help="EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL (required unless --dump-schemas)")
    ap.add_argument("--history", help="JSON-lines workload, '-' for stdin")
    ap.add_argument("--topic-prefix", default="dev", help="EVENT_BUS_TOPIC_PREFIX (default: dev)")
    ap.add_argument("--route", action="append", metavar="TYPE=TOPIC[,KEY_FIELD]",
                    help="send TYPE (e.g. enrollment.created) to TOPIC (unprefixed) instead; repeatable")
    ap.add_argument("--flush-timeout", type=float, default=60.0,
                    help="seconds to wait at the end for outstanding acknowledgements (default 60)")
    ap.add_argument("--max-in-flight", type=int, default=20000,
                    help="wait for acknowledgements when more messages than this are queued (default 20000)")
    ap.add_argument("--no-topic-check", action="store_true", help="do not check that the topics exist first")
    ap.add_argument("--deliveries", help="write one JSON line per acknowledged message: event_id, topic, partition, offset")
    ap.add_argument("--limit", type=int, help="produce only the first N messages")
    ap.add_argument("--dump-schemas", metavar="DIR",
                    help="write the key and value Avro schemas the serializers register, then exit")
    ap.add_argument("--sourcehost", default="lms.e2e.local", help="sourcehost header (default lms.e2e.local)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        routes = build_routes(args)
    except SetupError as e:
        print(f"produce: {e}", file=sys.stderr)
        return 2
    if not args.dump_schemas:
        if not args.registry or not args.history:
            ap.error("--registry and --history are required")
    args.registry = args.registry or "http://127.0.0.1:9"
    configure_django(args)
    # edx-event-bus-kafka logs (and swallows) serialization and delivery errors: count them
    errlog = ErrorLogCounter(traceback=args.verbose)
    # "Could not load New Relic monitoring backend" on every start: not our concern
    logging.getLogger("edx_django_utils.monitoring").setLevel(logging.ERROR)
    bus_logger = logging.getLogger("edx_event_bus_kafka")
    bus_logger.addHandler(errlog)
    bus_logger.propagate = False

    if args.dump_schemas:
        dump_schemas(args.dump_schemas, routes)
        return 0

    t_start = time.monotonic()
    builder = Builder(args.sourcehost)
    try:
        events = read_history(args.history, builder, routes, args.limit)
    except (InputError, OSError) as e:
        print(f"produce: {e}", file=sys.stderr)
        return 2
    t_read = time.monotonic()

    try:
        check_registry(args.registry)
    except SetupError as e:
        print(f"produce: {e}", file=sys.stderr)
        return 2

    from edx_event_bus_kafka.internal.config import get_full_topic
    from openedx_events.event_bus import get_producer

    api = get_producer()  # edx_event_bus_kafka.create_producer() -> KafkaEventProducer
    if type(api).__name__ != "KafkaEventProducer":
        print(f"produce: EVENT_BUS_PRODUCER did not load, got {api!r}", file=sys.stderr)
        return 2
    stats = Stats()
    if args.deliveries:
        stats.deliveries = open(args.deliveries, "w", encoding="utf-8")
    inner = api.producer
    api.producer = CountingProducer(inner, stats)

    topics = sorted({get_full_topic(topic) for _, topic, _, _, _, _ in events})
    try:
        partitions = {} if args.no_topic_check else check_topics(inner, topics, timeout=15)
    except SetupError as e:
        print(f"produce: {e}", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    for i, (signal, topic, key_field, data, metadata, _n) in enumerate(events):
        api.send(signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata)
        if i % 256 == 0 and len(inner) > args.max_in_flight:
            while len(inner) > args.max_in_flight // 2:
                inner.poll(0.05)
    t_sent = time.monotonic()
    remaining = inner.flush(args.flush_timeout)
    t_done = time.monotonic()
    if stats.deliveries:
        stats.deliveries.close()

    total = len(events)
    ok = stats.delivered == total and stats.failed == 0 and errlog.count == 0 and remaining == 0
    summary = {
        "ok": ok,
        "events": total,
        "queued": stats.queued,
        "delivered": stats.delivered,
        "failed": stats.failed,
        "not_acknowledged": remaining,
        "producer_errors_logged": errlog.count,
        "errors": dict(stats.errors),
        "topics": dict(stats.per_topic),
        "partitions": partitions,
        "messages_per_partition": dict(sorted(stats.per_partition.items())),
        "seconds": {"read": round(t_read - t_start, 3), "send": round(t_sent - t0, 3),
                    "flush": round(t_done - t_sent, 3), "total": round(t_done - t_start, 3)},
        "rate_per_s": round(total / max(t_done - t0, 1e-9)),
        "bootstrap": args.bootstrap,
        "registry": args.registry,
    }
    print(json.dumps(summary, sort_keys=True))
    if not ok:
        print(f"produce: FAILED: {stats.delivered}/{total} delivered, {stats.failed} delivery errors, "
              f"{errlog.count} producer errors logged, {remaining} not acknowledged", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
