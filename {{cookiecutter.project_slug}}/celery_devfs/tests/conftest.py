"""Fixtures of celery_devfs's tests: apps on a fresh data folder, and real workers."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .app import make_app

# The folder that holds celery_devfs: workers import it, and the tests' app, from there.
ROOT = Path(__file__).resolve().parent.parent.parent
WORKER = ["-m", "celery", "-A", "celery_devfs.tests.app", "worker", "--loglevel=INFO"]
# The servers to compare with (what .ci/services starts), unless set.
SERVERS = {
    "DEVFS_TEST_BROKER": os.environ.get("DEVFS_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    "DEVFS_TEST_BACKEND": os.environ.get("DEVFS_TEST_BACKEND", "redis://127.0.0.1:6379/0"),
}


def start(args, env, log=None):
    """`python <args>` beside celery_devfs, in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if log is None else log,
        stderr=None if log is None else subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that a kill reaches a worker's pool too
    )


def stop(process):
    """A warm shutdown, or SIGKILL to the whole group after 30 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def spawn():
    """spawn(args, env, log=None): start(...), and stop it when the test ends."""
    started = []
    yield lambda *args, **kwargs: started.append(start(*args, **kwargs)) or started[-1]
    for process in started:
        stop(process)


def environment(setup, tmp_path):
    return {
        **os.environ,
        **SERVERS,
        "DEVFS_TEST_SETUP": setup,
        "DEVFS_TEST_DATA": str(tmp_path / "data"),
        "DEVFS_TEST_QUEUE": f"devfs-test-{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def setup_for(tmp_path):
    """setup_for(name) -> (environment, client app) on a data folder and a queue of their own.
    Production: skipped when the servers do not answer, failed instead when CI=true."""
    made = []

    def make(setup):
        env = environment(setup, tmp_path)
        app = make_app(env)
        if setup == "production":
            try:
                with app.connection_for_write() as connection:
                    connection.ensure_connection(max_retries=1, timeout=5)
                app.backend.client.ping()
            except Exception as exc:
                if os.environ.get("CI") == "true":
                    pytest.fail(f"RabbitMQ or Redis does not answer: {exc!r}")
                pytest.skip(f"RabbitMQ or Redis does not answer: {exc!r}")
        made.append((env, app))
        return env, app

    yield make
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


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_until_ready(app, worker, log_file, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log_file.read_text()}")
        if app.control.ping(timeout=0.5):
            return
    pytest.fail(f"the worker did not answer within {timeout} s:\n{log_file.read_text()}")
