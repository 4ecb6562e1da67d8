"""Fixtures of celery_devfs's tests: apps on a fresh data folder, and real workers."""

import os
import uuid

import pytest
from celery_devfs.testing import (  # noqa: F401 (spawn: a fixture)
    ROOT,
    mark_production,
    servers_or_skip,
    spawn,
    wait_until,
    wait_until_ready,
    watch_as,
)

from .app import make_app

WORKER = ["-m", "celery", "-A", "celery_devfs.tests.app", "worker", "--loglevel=INFO"]
# The servers to compare with (what .ci/services starts), unless set.
SERVERS = {
    "DEVFS_TEST_BROKER": os.environ.get("DEVFS_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    "DEVFS_TEST_BACKEND": os.environ.get("DEVFS_TEST_BACKEND", "redis://127.0.0.1:6379/0"),
}


def pytest_collection_modifyitems(items):
    mark_production(items)


# celery_devfs as on macOS: the doorbell, in the test's own process and in every
# process it starts, and the workers' prefork pools spawned, not forked.
NO_INOTIFY = "devfs-no-inotify"
# Both ways a development machine wakes up, then RabbitMQ + Redis.
BOTH_WATCHES_AND_PRODUCTION = ["devfs", NO_INOTIFY, "production"]


def environment(setup, tmp_path):
    return {
        **os.environ,
        **SERVERS,
        **({"DEVFS_TEST_WATCH": "macos"} if setup == NO_INOTIFY else {}),
        "DEVFS_TEST_SETUP": "devfs" if setup == NO_INOTIFY else setup,
        "DEVFS_TEST_DATA": str(tmp_path / "data"),
        "DEVFS_TEST_QUEUE": f"devfs-test-{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def setup_for(tmp_path):
    """setup_for(name) -> (environment, client app) on a data folder and a queue of their own.
    Production: skipped when the servers do not answer, failed instead when CI=true."""
    made, undo = [], []

    def make(setup):
        if setup == NO_INOTIFY and not undo:
            undo.append(watch_as("doorbell"))
        env = environment(setup, tmp_path)
        app = make_app(env)
        if setup == "production":
            try:
                with app.connection_for_write() as connection:
                    connection.ensure_connection(max_retries=1, timeout=5)
                app.backend.client.ping()
            except Exception as exc:
                servers_or_skip([f"RabbitMQ or Redis does not answer: {exc!r}"])
        made.append((env, app))
        return env, app

    yield make
    for step in undo:
        step()
    for env, app in made:
        if env["DEVFS_TEST_SETUP"] == "production":
            with app.connection_for_write() as connection:
                connection.default_channel.queue_delete(env["DEVFS_TEST_QUEUE"])


@pytest.fixture
def dev(setup_for, tmp_path):
    """(environment, client app, {folder name: path}) of celery_devfs on a fresh folder."""
    env, app = setup_for("devfs")
    data = tmp_path / "data"
    return env, app, {name: data / name for name in ("queue", "control", "quarantine", "results")}
