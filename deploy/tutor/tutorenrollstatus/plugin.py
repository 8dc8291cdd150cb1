"""
Tutor plugin for enrollstatus.

enrollstatus answers the Open edX mobile apps'
``GET /api/mobile/{version}/users/{username}/enrollments_status/`` from a
projection of Open edX events read from Kafka. This plugin:

- makes the LMS and CMS produce those events to Kafka (openedx-events over
  edx-event-bus-kafka): enrollments, unenrollments, course catalog changes, and
  block completions as tracking events;
- runs enrollstatus beside the LMS (docker compose and Kubernetes) with the
  LMS's own JWT settings, so the tokens the mobile apps hold are accepted;
- routes the enrollments_status path on the LMS host to enrollstatus, in Caddy,
  before the LMS.

Kafka and a schema registry are not run by this plugin: point
ENROLLSTATUS_KAFKA_BOOTSTRAP_SERVERS and ENROLLSTATUS_SCHEMA_REGISTRY_URL at
yours.
"""

from __future__ import annotations

import importlib.resources

from tutor import hooks

from .__about__ import __version__

# Every event type enrollstatus projects: (event type, topic without prefix,
# event_key_field, service that produces it).
PRODUCED_EVENTS = [
    ("org.openedx.learning.course.enrollment.created.v1", "learning-course-enrollment-lifecycle", "enrollment.course.course_key", "lms"),
    ("org.openedx.learning.course.enrollment.changed.v1", "learning-course-enrollment-lifecycle", "enrollment.course.course_key", "lms"),
    ("org.openedx.learning.course.unenrollment.completed.v1", "course-unenrollment-lifecycle", "enrollment.course.course_key", "lms"),
    ("org.openedx.content_authoring.course.catalog_info.changed.v1", "course-catalog-info-changed", "catalog_info.course_key", "cms"),
    ("org.openedx.analytics.tracking.event.emitted.v1", "analytics", "tracking_log.name", "lms"),
]

# Tracking events sent over the event bus (EVENT_BUS_TRACKING_LOGS).
TRACKING_LOGS = ["edx.completion.block_completion.changed"]

hooks.Filters.CONFIG_DEFAULTS.add_items(
    [
        ("ENROLLSTATUS_VERSION", __version__),
        ("ENROLLSTATUS_DOCKER_IMAGE", "ghcr.io/enrollstatus/enrollstatus:{{ ENROLLSTATUS_VERSION }}"),
        ("ENROLLSTATUS_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"),
        ("ENROLLSTATUS_SCHEMA_REGISTRY_URL", "http://schema-registry:8081"),
        # The LMS's EVENT_BUS_TOPIC_PREFIX; Tutor's default is "dev".
        ("ENROLLSTATUS_TOPIC_PREFIX", "dev"),
        # Switch the platform's event bus producer to Kafka. Tutor's default
        # producer is Redis; turn this off if another plugin already
        # configures Kafka.
        ("ENROLLSTATUS_CONFIGURE_EVENT_BUS", True),
        # Installed into the openedx image (tutor images build openedx):
        # edx-event-bus-kafka needs confluent-kafka with Avro and the schema
        # registry client, which edx-platform does not install.
        ("ENROLLSTATUS_PIP_REQUIREMENTS", ["confluent-kafka[avro,schema-registry]==2.16.1"]),
        ("ENROLLSTATUS_HTTP_PORT", 8080),
        ("ENROLLSTATUS_REPLICAS", 1),
        ("ENROLLSTATUS_STORAGE_SIZE", "2Gi"),
        ("ENROLLSTATUS_POISON_POLICY", "skip"),
        ("ENROLLSTATUS_LOG_LEVEL", "info"),
        ("ENROLLSTATUS_EXTRA_ENV", {}),
    ]
)

hooks.Filters.CONFIG_UNIQUE.add_items(
    [
        # Turns the admin endpoints (snapshot, rebuild) on; 32+ characters.
        ("ENROLLSTATUS_ADMIN_TOKEN", "{{ 48|random_string }}"),
    ]
)

hooks.Filters.ENV_TEMPLATE_ROOTS.add_item(str(importlib.resources.files("tutorenrollstatus") / "templates"))
hooks.Filters.ENV_TEMPLATE_TARGETS.add_items(
    [
        ("enrollstatus/apps", "plugins"),
        ("enrollstatus/k8s", "plugins"),
    ]
)


@hooks.Filters.ENV_TEMPLATE_VARIABLES.add()
def _template_variables(variables: list[tuple[str, object]]) -> list[tuple[str, object]]:
    variables.append(("enrollstatus_produced_events", PRODUCED_EVENTS))
    variables.append(("enrollstatus_tracking_logs", TRACKING_LOGS))
    return variables


# Patches: one file per patch point in patches/.
for _path in (importlib.resources.files("tutorenrollstatus") / "patches").iterdir():
    if _path.is_file():
        hooks.Filters.ENV_PATCHES.add_item((_path.name, _path.read_text(encoding="utf-8")))
