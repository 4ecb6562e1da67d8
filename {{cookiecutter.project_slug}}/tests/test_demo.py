"""make demo: the sample chord, on a worker of the project's own queue."""

import subprocess
import sys

import pytest
from conftest import wait_until_ready

from {{ cookiecutter.project_slug }} import settings

PACKAGE = settings.__package__
# A worker of another app on the project's broker, consuming the queue in
# argv[1]: another project's worker (it knows none of our tasks), or, with
# argv[2], a stale one whose tsum takes that many seconds.
FOREIGN_WORKER = """
import sys, time
from celery import Celery
from {package} import app as ours
app = Celery("foreign")
for name in ("broker_url", "result_backend", "broker_transport_options"):
    app.conf[name] = ours.conf[name]
if sys.argv[2:]:
    @app.task(name="{package}.tasks.tsum")
    def tsum(numbers):
        time.sleep(float(sys.argv[2]))
app.worker_main(["worker", "--pool=solo", "--hostname=foreign@%h", "-Q", sys.argv[1]])
"""
# make demo, with a shorter wait than its 60 s.
DEMO = f"""
from {PACKAGE} import demo
demo.TIMEOUT = 2
demo.main()
"""


def run_demo(env, code=None):
    command = ["-c", code] if code else ["-m", f"{PACKAGE}.demo"]
    return subprocess.run(
        [sys.executable, *command],
        env=env,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("setup", ["development", "production"])
def test_demo_ignores_a_worker_that_serves_another_queue(setup, setup_for, spawn, tmp_path):
    env, app = setup_for(setup)
    other_env, _ = setup_for(setup)
    other_env["CELERY_DATA_DIR"] = env["CELERY_DATA_DIR"]  # same broker, another queue
    code = FOREIGN_WORKER.format(package=PACKAGE)
    log = tmp_path / "foreign.log"
    worker = spawn(["-c", code, other_env["CELERY_QUEUE"]], other_env, log=open(log, "w"))
    wait_until_ready(app, worker, log)
    done = run_demo(env)
    assert (done.returncode, done.stdout) == (0, "10\n"), done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("setup", ["development", "production"])
@pytest.mark.parametrize(
    ("stale", "error"),
    [
        (
            [],
            "ERROR: the chord failed with NotRegistered: '{}.tasks.tsum'; "
            "see the output of foreign@",
        ),
        (["3"], "ERROR: the chord gave no result within 2 s; see the output of foreign@"),
    ],
    ids=["unknown-task", "too-slow"],
)
def test_demo_fails_with_one_line_naming_the_worker_to_look_at(
    setup, stale, error, setup_for, spawn, tmp_path
):
    env, app = setup_for(setup)
    log = tmp_path / "foreign.log"
    code = FOREIGN_WORKER.format(package=PACKAGE)
    worker = spawn(["-c", code, env["CELERY_QUEUE"], *stale], env, log=open(log, "w"))
    wait_until_ready(app, worker, log)
    done = run_demo(env, DEMO)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(error.format(PACKAGE)), done.stderr
