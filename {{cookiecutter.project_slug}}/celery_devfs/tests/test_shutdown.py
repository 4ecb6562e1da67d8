"""A worker stops on SIGTERM however many arrive at once, as on RabbitMQ and Redis: a
kill of the process group under `uv run` (which passes its own SIGTERM on) or a
container stop often delivers two."""

import os
import select
import signal
import subprocess
import time

import pytest
from celery_devfs import notify

from .conftest import WORKER, wait_until


@pytest.mark.parametrize("setup", ["devfs", "production"])
def test_a_burst_of_sigterms_ends_the_worker(setup, setup_for, spawn, tmp_path):
    env, app = setup_for(setup)
    log_file = tmp_path / "workers.log"
    log = open(log_file, "w")
    # Three workers: a race lost once in a few tries shows in one run.
    command = [*WORKER, "--pool=prefork", "--concurrency=1"]
    workers = [spawn([*command, f"--hostname=w{i}@%h"], env, log=log) for i in range(3)]
    wait_until(lambda: len(app.control.ping(timeout=0.5)) == 3, 60, "three workers to answer")
    assert app.send_task("devfs_tests.add", ([1, 2],)).get(timeout=30) == 3
    for worker in workers:
        # Spread over the handler's first run: each may land inside the one before.
        for pause in [0, 0, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3]:
            worker.send_signal(signal.SIGTERM)
            time.sleep(pause)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker did not stop within 20 s:\n{log_file.read_text()[-3000:]}")


def test_a_stop_signal_wakes_a_sleeping_consumer_and_says_it_stops(monkeypatch):
    """What ends the worker's sleep in epoll: the signal's own byte in the wakeup pipe,
    written in C (no Celery signal receiver, whose lock a second SIGTERM deadlocks)."""
    from celery import signals

    assert not [r for r in signals.worker_shutting_down.receivers if "celery_devfs" in repr(r)]
    fd = notify.signal_fd()
    monkeypatch.setitem(notify._signals, "stopping", False)
    for sig in (signal.SIGUSR2, signal.SIGTERM):  # any signal wakes; SIGTERM stops
        previous = signal.signal(sig, lambda *args: None)
        try:
            os.kill(os.getpid(), sig)
            woken = select.select([fd], [], [], 1)[0]
        finally:
            signal.signal(sig, previous)
        assert woken and notify.stopping() is (sig == signal.SIGTERM)
