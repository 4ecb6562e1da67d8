"""Nothing is lost when a worker dies with tasks in hand, on celery_devfs as on RabbitMQ.

A worker with late acknowledgement is killed (SIGKILL, pool included) while
slow tasks run; a new worker then runs every task that had not finished.
"""

import os
import signal
import time

import pytest
from celery.result import AsyncResult

from .conftest import WORKER, wait_until


@pytest.mark.parametrize("setup", ["devfs", "production"])
def test_tasks_of_a_killed_worker_run_again_on_the_next_one(setup, setup_for, spawn, tmp_path):
    env, app = setup_for(setup)
    log_file = tmp_path / "worker.log"
    log = open(log_file, "w")
    command = [*WORKER, "--pool=prefork", "--concurrency=2"]
    worker = spawn(command, env, log=log)
    results = [app.send_task("devfs_tests.slow_add", ([i, 1], 1.0)) for i in range(6)]
    wait_until(lambda: sum(r.state == "STARTED" for r in results) == 2, 60, "two tasks to start")
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool
    worker.wait()
    assert not any(r.ready() for r in results[:2])  # killed mid-task
    worker = spawn(command, env, log=log)
    try:
        assert [r.get(timeout=60) for r in results] == [i + 1 for i in range(6)]
    except Exception:  # say what each task was doing, and what the workers said
        states = [r.state for r in results]
        pytest.fail(f"states {states}; workers' log:\n{log_file.read_text()[-4000:]}")
    worker.terminate()
    worker.wait(timeout=60)
    if setup == "devfs":
        assert "put back in its queue" in log_file.read_text()
        data = tmp_path / "data"
        assert list((data / "queue").iterdir()) == [], "files left in the queue folder"
        assert list((data / "quarantine").iterdir()) == []


def test_expired_results_are_removed_by_the_cleanup_task(dev):
    env, app, folders = dev
    app.backend.store_result("old-task", 3, "SUCCESS")
    app.backend.store_result("new-task", 7, "SUCCESS")
    old = folders["results"] / "celery-task-meta-old-task"
    day_and_an_hour_ago = time.time() - app.conf.result_expires - 3600
    os.utime(old, (day_and_an_hour_ago, day_and_an_hour_ago))
    app.tasks["celery.backend_cleanup"]()  # what beat runs every day at 4:00
    assert not old.exists()
    assert AsyncResult("new-task", app=app).get(timeout=1) == 7
