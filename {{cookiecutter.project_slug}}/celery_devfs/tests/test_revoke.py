"""Revoke on celery_devfs as on RabbitMQ + Redis: by id, with terminate, by stamped
headers; and what a worker that starts after the revoke knows of it (Celery's
Mingle: what the workers up hold). Development runs each with inotify and without it
(the doorbell, as on macOS)."""

import pytest
from celery import signature
from celery.canvas import StampingVisitor
from celery.exceptions import TaskRevokedError

from .conftest import BOTH_WATCHES_AND_PRODUCTION, WORKER, wait_until, wait_until_ready


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


@pytest.mark.parametrize("setup", BOTH_WATCHES_AND_PRODUCTION)
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


@pytest.mark.parametrize("setup", BOTH_WATCHES_AND_PRODUCTION)
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


@pytest.mark.parametrize("setup", BOTH_WATCHES_AND_PRODUCTION)
def test_revoke_by_stamped_headers(setup, setup_for, worker):
    env, app = setup_for(setup)
    worker(env, app)
    app.control.revoke_by_stamped_headers({"monitoring_id": ["bad"]})
    revoked, kept = stamped(app, "bad", [1, 1]).delay(), stamped(app, "good", [2, 2]).delay()
    with pytest.raises(TaskRevokedError):
        revoked.get(timeout=30)
    assert kept.get(timeout=30) == 4


@pytest.mark.parametrize("setup", BOTH_WATCHES_AND_PRODUCTION)
def test_a_starting_worker_learns_the_revokes_of_the_workers_up(setup, setup_for, spawn, tmp_path):
    """Celery's Mingle: on both, a worker asks the others for their revokes as it starts."""
    env, app = setup_for(setup)
    log_file = tmp_path / "first.log"
    # Up, but on another queue: it holds the revoke and never takes the task.
    first = spawn([*WORKER, "-n", "first@%h", "-Q", "elsewhere"], env, log=open(log_file, "w"))
    wait_until_ready(app, first, log_file)
    app.control.revoke("revoked-before-start")
    log_file = tmp_path / "second.log"
    second = spawn([*WORKER, "-n", "second@%h"], env, log=open(log_file, "w"))
    wait_until_ready(app, second, log_file)
    synced = lambda: "mingle: sync with 1 nodes" in log_file.read_text()  # noqa: E731
    wait_until(synced, 10, "the second worker's log to say it synced with the first")
    result = app.send_task("devfs_tests.add", ([1, 1],), task_id="revoked-before-start")
    with pytest.raises(TaskRevokedError):
        result.get(timeout=30)


@pytest.mark.parametrize("setup", BOTH_WATCHES_AND_PRODUCTION)
def test_a_revoke_sent_while_no_worker_is_up_reaches_no_later_worker(setup, setup_for, worker):
    """No worker held it: the task runs, as on RabbitMQ (the revoke is a broadcast)."""
    env, app = setup_for(setup)
    app.control.revoke("revoked-while-none-up")
    worker(env, app)
    result = app.send_task("devfs_tests.add", ([1, 1],), task_id="revoked-while-none-up")
    assert result.get(timeout=30) == 2
