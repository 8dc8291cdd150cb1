"""
Fixtures: a Tutor project rendered by the real `tutor` command with this
plugin enabled, in a temporary TUTOR_ROOT.

TUTOR_TEST_ROOT, when set, is used (and kept) as the TUTOR_ROOT of the
default configuration, so that other checks can read the rendered env
afterwards (scripts/deploy-check.sh validates its compose files and
Kubernetes manifests with compose-go and kustomize).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

TUTOR = str(pathlib.Path(sys.executable).with_name("tutor"))


class Project:
    """A rendered Tutor project."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.env = root / "env"

    def tutor(self, *args: str) -> str:
        env = dict(os.environ, TUTOR_ROOT=str(self.root), TUTOR_PLUGINS_ROOT=str(self.root / "plugins"))
        res = subprocess.run([TUTOR, *args], env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise AssertionError(f"tutor {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def config(self, key: str) -> str:
        return self.tutor("config", "printvalue", key).strip()

    def read(self, path: str) -> str:
        return (self.env / path).read_text(encoding="utf-8")

    def yaml_docs(self, path: str) -> list[dict]:
        return [d for d in yaml.safe_load_all(self.read(path)) if d]

    def env_file(self) -> dict[str, str]:
        out = {}
        for line in self.read("plugins/enrollstatus/apps/enrollstatus.env").splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                out[key] = value
        return out


def _render(root: pathlib.Path, *settings: str) -> Project:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    p = Project(root)
    p.tutor("plugins", "enable", "enrollstatus")
    args = ["config", "save"]
    for s in settings:
        args += ["--set", s]
    p.tutor(*args)
    return p


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Project:
    """The default configuration: the plugin enabled, nothing else set."""
    root = os.environ.get("TUTOR_TEST_ROOT")
    return _render(pathlib.Path(root) if root else tmp_path_factory.mktemp("tutor") / "root")


@pytest.fixture(scope="session")
def custom(tmp_path_factory) -> Project:
    """Settings an operator changes: HTTPS, another prefix and Kafka, replicas."""
    return _render(
        tmp_path_factory.mktemp("tutor-custom") / "root",
        "ENABLE_HTTPS=true",
        "LMS_HOST=lms.example.com",
        "ENROLLSTATUS_TOPIC_PREFIX=prod",
        "ENROLLSTATUS_KAFKA_BOOTSTRAP_SERVERS=k1:9092,k2:9092",
        "ENROLLSTATUS_REPLICAS=3",
        "ENROLLSTATUS_HTTP_PORT=8081",
    )


@pytest.fixture(scope="session")
def no_event_bus(tmp_path_factory) -> Project:
    """The event bus left to another plugin."""
    return _render(tmp_path_factory.mktemp("tutor-nobus") / "root", "ENROLLSTATUS_CONFIGURE_EVENT_BUS=false")
