"""The Celery app whose workers the integration tests run, in one of three setups
named by DEVFS_TEST_SETUP: ``devfs`` (on DEVFS_TEST_DATA), ``kombu`` (kombu's
own filesystem transport and Celery's file backend, on the same folders), or
``production`` (DEVFS_TEST_BROKER, DEVFS_TEST_BACKEND: RabbitMQ and Redis)."""

import os
import time
from pathlib import Path

import celery_devfs
from celery import Celery, shared_task
from celery_devfs.testing import watch_as

watch_as(os.environ.get("DEVFS_TEST_WATCH"))  # doorbell, polling, macos: as other systems

SETUPS = ("devfs", "kombu", "production")


def make_app(env):
    app = Celery("devfs_tests")
    setup = env["DEVFS_TEST_SETUP"]
    if setup == "production":
        app.conf.update(broker_url=env["DEVFS_TEST_BROKER"])
        app.conf.update(result_backend=env["DEVFS_TEST_BACKEND"])
    else:
        app.conf.update(celery_devfs.celery_settings(env["DEVFS_TEST_DATA"]))
    if setup == "kombu":
        results = Path(env["DEVFS_TEST_DATA"]).resolve() / "results"
        app.conf.update(broker_url="filesystem://localhost//", result_backend=results.as_uri())
    app.conf.update(
        task_default_queue=env.get("DEVFS_TEST_QUEUE", "devfs-tests"),
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # As the projects that use celery_devfs: late acknowledgement, one at a time
        # (kombu's own polls once a second: it keeps Celery's defaults).
        task_acks_late=setup != "kombu",
        worker_prefetch_multiplier=1 if setup != "kombu" else 4,
        task_track_started=True,
        result_expires=24 * 3600,
        # Celery's 60 s, or less for the test of a killed monitor.
        event_queue_expires=float(env.get("DEVFS_TEST_EVENT_QUEUE_EXPIRES", 60)),
    )
    return app


@shared_task(name="devfs_tests.add")
def add(numbers):
    return sum(numbers)


@shared_task(name="devfs_tests.slow_add")
def slow_add(numbers, seconds):
    time.sleep(seconds)
    return sum(numbers)


app = make_app(os.environ) if "DEVFS_TEST_SETUP" in os.environ else None
