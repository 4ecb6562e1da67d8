"""celery beat sends the scheduled tasks over celery_devfs, and a worker runs them."""

import subprocess
import time

from .conftest import WORKER

BEAT = """
import sys
from celery_devfs.tests.app import app
app.conf.beat_schedule = {"test": {"task": "devfs_tests.add", "schedule": 0.5, "args": ([20, 22],)}}
app.start(["beat", "--loglevel=INFO", "--schedule=" + sys.argv[1], "--pidfile=" + sys.argv[2]])
"""


def test_beat_sends_the_scheduled_task_and_a_worker_runs_it(spawn, setup_for, tmp_path):
    env, _ = setup_for("devfs")
    data = tmp_path / "data"
    log = tmp_path / "worker.log"
    worker = spawn([*WORKER, "--pool=solo"], env, log=open(log, "w"))
    beat = spawn(
        ["-c", BEAT, data / "beat-schedule", data / "beat.pid"], env, log=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while log.read_text().count("succeeded") < 3:
        assert time.monotonic() < deadline, log.read_text()
        assert beat.poll() is None and worker.poll() is None
        time.sleep(0.2)
    assert (data / "beat.pid").read_text().strip() == str(beat.pid)
    assert ": 42" in log.read_text()
    assert list(data.glob("beat-schedule*"))
