"""Monitors over celery_devfs, as on RabbitMQ: `celery events --dump`, the curses
screen of `celery events`, and what a killed monitor leaves once its queue has
expired (Celery's event_queue_expires): nothing. Each with inotify and without it (the
doorbell, as on macOS)."""

import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

import pytest

from .conftest import NO_INOTIFY, ROOT, WORKER, wait_until, wait_until_ready

EVENTS = [sys.executable, "-m", "celery", "-A", "celery_devfs.tests.app", "events"]


def monitors(data):
    """The queues bound to the event exchange: one per running monitor."""
    try:
        rows = json.loads((data / "control" / "celeryev.exchange").read_text())
    except FileNotFoundError:
        return []
    return [queue for _, _, queue in rows]


def event_files(data):
    return [p.name for p in (data / "queue").iterdir() if ".celeryev." in p.name]


@pytest.fixture(params=["devfs", NO_INOTIFY])
def worker_with_events(request, spawn, setup_for, tmp_path):
    """(env, app, data folder) with a worker that sends task events (-E)."""

    def start(**extra):
        env, app = setup_for(request.param)
        env.update(extra)
        log = tmp_path / "worker.log"
        worker = spawn([*WORKER, "--pool=solo", "-E"], env, log=open(log, "w"))
        wait_until_ready(app, worker, log)
        return env, app, tmp_path / "data"

    return start


def test_events_dump_shows_a_workers_tasks(worker_with_events, spawn, tmp_path):
    env, app, data = worker_with_events()
    log = tmp_path / "dump.log"
    spawn([*EVENTS[1:], "--dump"], env, log=open(log, "w"))
    wait_until(lambda: monitors(data), 30, "event queue")
    result = app.send_task("devfs_tests.add", ([20, 22],))
    assert result.get(timeout=30) == 42
    line = f"task succeeded: devfs_tests.add({result.id})"
    wait_until(lambda: line in log.read_text(), 30, "event")
    assert "heartbeat" in log.read_text()


def test_the_curses_monitor_shows_a_workers_tasks(worker_with_events):
    env, app, data = worker_with_events()
    pid, terminal = pty.fork()
    if pid == 0:  # the monitor, on a 40 x 120 terminal
        os.chdir(ROOT)
        os.execve(sys.executable, EVENTS, {**env, "TERM": "xterm"})
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while not monitors(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        result = app.send_task("devfs_tests.add", ([20, 22],))
        assert result.get(timeout=30) == 42
        while time.monotonic() < deadline and b"SUCCESS" not in screen:
            if select.select([terminal], [], [], 0.2)[0]:
                screen += os.read(terminal, 65536)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(terminal)
    assert b"devfs_tests.add" in screen and b"SUCCESS" in screen, screen[-2000:]


def test_a_killed_monitor_leaves_nothing_once_its_queue_expires(worker_with_events, spawn):
    env, app, data = worker_with_events(DEVFS_TEST_EVENT_QUEUE_EXPIRES="2")
    monitor = spawn([*EVENTS[1:], "--dump"], env, log=open(os.devnull, "w"))
    wait_until(lambda: monitors(data), 30, "event queue")
    os.killpg(monitor.pid, signal.SIGKILL)  # it cannot unbind its queue
    monitor.wait()
    killed = time.monotonic()
    assert monitors(data) != []
    for numbers in ([1], [2], [3]):  # events for the dead monitor's queue
        app.send_task("devfs_tests.add", (numbers,)).get(timeout=30)
    # Its expiry (2 s), then the worker's next look (1 s); bounded at 15 s.
    wait_until(lambda: not monitors(data) and not event_files(data), 15, "expiry")
    print(f"the killed monitor's queue went {time.monotonic() - killed:.1f} s after its death")
    assert not list((data / "control").glob("celeryev.*.queue"))
    for numbers in ([4], [5]):
        app.send_task("devfs_tests.add", (numbers,)).get(timeout=30)
    time.sleep(1)
    assert event_files(data) == []  # nothing grows any more
