"""Helpers for tests that run real Celery processes: celery_devfs's own tests and the
project's use the same ones (import the fixtures into a conftest.py)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The project's root, which holds celery_devfs: processes start there.
ROOT = Path(__file__).resolve().parent.parent
# How a process learns that a file arrived: inotify (Linux), the doorbell where there
# is none (the BSDs), or polling where neither can be had (WSL 2's /mnt/c); "macos" is
# the doorbell with Celery's prefork pool spawned, not forked, as billiard does there,
# and its processes without Linux's parent-death signal (macOS has none).
WATCHES = ("inotify", "doorbell", "polling")


def watch_as(mode):
    """Wait for files as a machine of that kind does, in this process (tests here, on
    Linux, run the code those machines run); returns what undoes it. DEVFS_TEST_WATCH
    does the same in the test workers (tests/app.py)."""
    import billiard
    from celery import signals

    from .notify import Doorbell, Inotify, close_shared

    kept = Inotify.watching, Doorbell.watching, billiard.get_start_method(allow_none=True)
    if mode == "macos":  # a pool started from here on spawns its processes
        billiard.set_start_method("spawn", force=True)
        # Celery gives each pool process Linux's parent-death signal as it starts; a
        # spawned one imports this (the worker's app module calls watch_as) after.
        signals.worker_process_init.connect(no_parent_death_signal, weak=False)
        no_parent_death_signal()
    if mode in ("doorbell", "polling", "macos"):
        Inotify.watching = classmethod(lambda cls, folder: None)
    if mode == "polling":
        Doorbell.watching = classmethod(lambda cls, folder: None)
    close_shared()  # made the other way

    def undo():
        close_shared()
        Inotify.watching, Doorbell.watching = kept[:2]
        billiard.set_start_method(kept[2], force=True)
        signals.worker_process_init.disconnect(no_parent_death_signal)

    return undo


def no_parent_death_signal(**kwargs):
    """This process outlives its parent, as a Mac's pool processes do (no prctl there)."""
    from billiard.util import set_pdeathsig

    try:
        set_pdeathsig(0)
    except OSError:  # not Linux: it has none already
        pass


def start(args, env, log=None):
    """`python <args>` in the project's root, in a process group of its own (so that a
    kill reaches a worker's pool too); its output in a pipe, or in `log`."""
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if log is None else log,
        stderr=None if log is None else subprocess.STDOUT,
        text=True,
        start_new_session=True,
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


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_until_ready(app, worker, log_file, timeout=60):
    """Until the worker answers a ping; fail, with its log, if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log_file.read_text()}")
        if app.control.ping(timeout=0.5):
            return
    pytest.fail(f"the worker did not answer within {timeout} s:\n{log_file.read_text()}")


def servers_or_skip(problems):
    """Skip a test whose production servers do not answer; fail it instead on CI."""
    if problems and os.environ.get("CI") == "true":
        pytest.fail("; ".join(problems))
    if problems:
        pytest.skip("; ".join(problems))


def mark_production(items):
    """The `production` marker on every test that needs RabbitMQ and Redis: those run
    with a "production" parameter (`pytest -m "not production"` leaves them out)."""
    for item in items:
        params = getattr(item, "callspec", None)
        if params and "production" in params.params.values():
            item.add_marker(pytest.mark.production)
