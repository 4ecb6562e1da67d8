"""Revoke on celery_devfs as on RabbitMQ + Redis: by id, with terminate, by stamped
headers; and a worker that starts after the revoke knows it (there, Mingle asks
the workers that are up; here, the data folder keeps revokes: see transport.py)."""

import json

import pytest
from celery import signature
from celery.canvas import StampingVisitor
from celery.exceptions import TaskRevokedError

from .conftest import WORKER, wait_until, wait_until_ready


@pytest.fixture
def worker(spawn, tmp_path):
    """worker(env, app): a prefork worker, concurrency 1, answering before it returns."""

    def start(env, app):
        log_file = tmp_path / "worker.log"
        process = spawn([*WORKER, "--concurrency=1"], env, log=open(log_file, "w"))
        wait_until_ready(app, process, log_file)
        return process

    return start


class Stamp(StampingVisitor):
    def __init__(self, value):
        self.value = value

    def on_signature(self, sig, **headers):
        return {"monitoring_id": self.value}


def stamped(app, value, numbers):
    task = signature("devfs_tests.add", args=(numbers,), app=app)
    task.stamp(visitor=Stamp(value))
    return task


@pytest.mark.parametrize("setup", ["devfs", "production"])
def test_a_revoked_task_in_the_queue_never_runs(setup, setup_for, worker):
    env, app = setup_for(setup)
    worker(env, app)
    busy = app.send_task("devfs_tests.slow_add", ([1], 2))
    waiting = app.send_task("devfs_tests.add", ([1, 1],))
    waiting.revoke()
    with pytest.raises(TaskRevokedError):
        waiting.get(timeout=30)
    assert waiting.state == "REVOKED"
    assert busy.get(timeout=30) == 1


@pytest.mark.parametrize("setup", ["devfs", "production"])
def test_revoke_with_terminate_stops_a_running_task(setup, setup_for, worker):
    env, app = setup_for(setup)
    process = worker(env, app)
    running = app.send_task("devfs_tests.slow_add", ([1], 60))
    wait_until(lambda: running.state == "STARTED", 30, "the task to start")
    running.revoke(terminate=True)
    with pytest.raises(TaskRevokedError):
        running.get(timeout=30)  # not after its 60 s
    assert app.send_task("devfs_tests.add", ([2, 2],)).get(timeout=30) == 4
    assert process.poll() is None


@pytest.mark.parametrize("setup", ["devfs", "production"])
def test_revoke_by_stamped_headers(setup, setup_for, worker):
    env, app = setup_for(setup)
    worker(env, app)
    app.control.revoke_by_stamped_headers({"monitoring_id": ["bad"]})
    revoked, kept = stamped(app, "bad", [1, 1]).delay(), stamped(app, "good", [2, 2]).delay()
    with pytest.raises(TaskRevokedError):
        revoked.get(timeout=30)
    assert kept.get(timeout=30) == 4


def test_a_worker_started_after_the_revoke_knows_it(setup_for, worker):
    env, app = setup_for("devfs")
    by_id = app.send_task("devfs_tests.add", ([1, 1],))
    by_id.revoke()  # no worker is up: nobody receives the broadcast
    app.control.revoke_by_stamped_headers({"monitoring_id": ["bad"]})
    by_stamp = stamped(app, "bad", [3, 3]).delay()
    worker(env, app)
    for result in (by_id, by_stamp):
        with pytest.raises(TaskRevokedError):
            result.get(timeout=30)
    assert app.send_task("devfs_tests.add", ([2, 2],)).get(timeout=30) == 4


@pytest.mark.parametrize(
    "content",
    [
        b"\xff not JSON",
        json.dumps({"not": "a list"}).encode(),
        json.dumps([{"time": 1.0e18, "method": "revoke", "arguments": {"task_id": {}}}]).encode(),
        json.dumps([{"time": 1.0e18, "method": "revoke_by_stamped_headers",
                     "arguments": {"headers": ["no equals sign"]}, "destination": 42}]).encode(),
    ],
    ids=["not JSON", "not a list", "a task id that is an object", "bad headers and destination"],
)  # fmt: skip
def test_a_damaged_revokes_file_does_not_stop_a_worker(content, dev, worker, tmp_path):
    env, app, folders = dev
    (folders["control"] / "celery.pidbox.revokes").write_bytes(content)
    process = worker(env, app)
    assert app.send_task("devfs_tests.add", ([2, 2],)).get(timeout=30) == 4
    assert process.poll() is None
    log = (tmp_path / "worker.log").read_text()
    assert "Unreadable file" in log or "Damaged revoke" in log, log
