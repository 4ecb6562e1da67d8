"""Nothing is lost when a worker dies with tasks in hand, in development as in production.

A worker with late acknowledgement is killed (SIGKILL, pool included) while
slow tasks run; a new worker then runs every task that had not finished.
"""

import os
import signal
import time

import pytest
from celery.result import AsyncResult

from {{ cookiecutter.project_slug }} import settings
from {{ cookiecutter.project_slug }}.celery import create_app

SLOW_TASK = "tests.slow_sum"
# A real worker, with late acknowledgement in every setup and a slow task of its own.
WORKER = f"""
import time
from {settings.__package__} import app
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1)

@app.task(name="{SLOW_TASK}")
def slow_sum(numbers, seconds):
    time.sleep(seconds)
    return sum(numbers)

app.worker_main(["worker", "--pool=prefork", "--concurrency=2", "--loglevel=INFO"])
"""


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("setup", ["development", "production"])
def test_tasks_of_a_killed_worker_run_again_on_the_next_one(setup, setup_for, spawn, tmp_path):
    env, app = setup_for(setup)
    log = open(tmp_path / "worker.log", "w")
    worker = spawn(["-c", WORKER], env, log=log)
    results = [app.send_task(SLOW_TASK, args=([i, 1], 1.0)) for i in range(6)]
    wait_until(lambda: sum(r.state == "STARTED" for r in results) == 2, 60, "two tasks to start")
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool
    worker.wait()
    assert not any(r.ready() for r in results[:2])  # killed mid-task
    worker = spawn(["-c", WORKER], env, log=log)
    assert [r.get(timeout=60) for r in results] == [i + 1 for i in range(6)]
    worker.terminate()
    worker.wait(timeout=60)
    if setup == "development":
        assert "put back in its queue" in (tmp_path / "worker.log").read_text()
        queue = settings.data_folders(env)["queue"]
        assert list(queue.iterdir()) == [], "files left in the queue folder"
        assert list(settings.data_folders(env)["quarantine"].iterdir()) == []


def test_expired_results_are_removed_by_the_cleanup_task(tmp_path):
    env = {"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path / "data")}
    app = create_app(settings.load(env))
    app.backend.store_result("old-task", 3, "SUCCESS")
    app.backend.store_result("new-task", 7, "SUCCESS")
    results = settings.data_folders(env)["results"]
    old = results / "celery-task-meta-old-task"
    day_and_an_hour_ago = time.time() - app.conf.result_expires - 3600
    os.utime(old, (day_and_an_hour_ago, day_and_an_hour_ago))
    app.tasks["celery.backend_cleanup"]()  # what beat runs every day at 4:00
    assert not old.exists()
    assert AsyncResult("new-task", app=app).get(timeout=1) == 7
