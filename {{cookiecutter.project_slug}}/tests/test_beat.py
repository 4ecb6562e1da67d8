"""celery beat sends the scheduled tasks, and a worker runs them."""

import os
import subprocess
import time

from {{ cookiecutter.project_slug }} import settings

PACKAGE = settings.__package__
# The project's app, with a schedule of half a second instead of a minute.
SCHEDULE = {"test": {"task": f"{PACKAGE}.tasks.tsum", "schedule": 0.5, "args": ([20, 22],)}}
BEAT = f"""
import sys
from {PACKAGE} import app
app.conf.beat_schedule = {SCHEDULE!r}
app.start(["beat", "--loglevel=INFO", "--schedule=" + sys.argv[1], "--pidfile=" + sys.argv[2]])
"""


def test_the_example_schedule_sends_tsum_every_minute():
    schedule = settings.load({"CELERY_ENV": "development"})["beat_schedule"]
    assert [(e["task"], e["schedule"]) for e in schedule.values()] == [
        (f"{PACKAGE}.tasks.tsum", 60.0)
    ]


def test_beat_sends_the_scheduled_task_and_a_worker_runs_it(spawn, tmp_path):
    env = {**os.environ, "CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path / "data")}
    data = settings.data_dir(env)
    data.mkdir(parents=True)
    log = tmp_path / "worker.log"
    worker_command = ["-m", "celery", "-A", PACKAGE, "worker", "--pool=solo", "--loglevel=INFO"]
    worker = spawn(worker_command, env, log=open(log, "w"))
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
