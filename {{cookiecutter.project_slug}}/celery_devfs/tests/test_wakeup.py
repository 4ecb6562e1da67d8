"""Where there is no inotify (macOS, the BSDs), processes wait on the doorbell: a chord
then takes about what it takes with inotify, not a polling interval at each hop (0.1 s,
three hops). Both figures are measured here, in the same run, on this machine: the
test compares them, it holds no fixed time."""

import statistics
import time

from celery import chord, signature
from celery_devfs.testing import start, stop

from .conftest import NO_INOTIFY, WORKER, wait_until_ready

CHORDS = 20
# How much slower than with inotify the doorbell may be before this fails. Measured here:
# about 1x; polling is about 30x (tests/bench.py, setup devfs-polling).
AT_MOST = 3


def chord_median(setup, setup_for, tmp_path):
    """The median seconds of a 2+1 chord's round trip, with a prefork worker (2 processes)."""
    env, app = setup_for(setup)
    log_file = tmp_path / f"{setup}.log"
    worker = start([*WORKER, "--concurrency=2"], env, log=open(log_file, "w"))
    try:
        wait_until_ready(app, worker, log_file)

        def add(numbers=None):
            return signature("devfs_tests.add", args=() if numbers is None else (numbers,), app=app)

        def once():
            began = time.perf_counter()
            assert chord([add([1, 2]), add([3, 4])], add()).delay().get(timeout=30) == 10
            return time.perf_counter() - began

        once()  # the first one opens files and forks nothing: not measured
        return statistics.median(once() for _ in range(CHORDS))
    finally:
        stop(worker)


def test_a_chord_without_inotify_takes_about_its_time_with_inotify(setup_for, tmp_path):
    with_inotify = chord_median("devfs", setup_for, tmp_path)
    without = chord_median(NO_INOTIFY, setup_for, tmp_path)
    assert without <= AT_MOST * with_inotify, (
        f"a chord takes {without * 1000:.1f} ms without inotify, "
        f"{with_inotify * 1000:.1f} ms with it (at most {AT_MOST}x allowed)"
    )
