"""A real worker for the integration tests, in each environment.

Development runs on a fresh data folder. Production runs against the servers
named in .env, on a queue of its own; when they do not answer, its tests skip,
or fail when CI=true (CI starts the servers).
"""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from {{ cookiecutter.project_slug }} import app as default_app
from {{ cookiecutter.project_slug }} import cli, settings
from {{ cookiecutter.project_slug }}.celery import create_app


def start(args, env, log=None):
    """`python <args>` in the project root, in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=settings.PROJECT_ROOT,
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


def wait_until_ready(app, worker, log_file, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log_file.read_text()}")
        if app.control.ping(timeout=0.5):
            return
    pytest.fail(f"the worker did not answer within {timeout} s:\n{log_file.read_text()}")


def require_servers(app):
    """Skip the test when the production servers do not answer; fail instead on CI."""
    problems = cli.unreachable(app)
    if problems and os.environ.get("CI") == "true":
        pytest.fail("; ".join(problems))
    if problems:
        pytest.skip("; ".join(problems))


@pytest.fixture(scope="session")
def production_env():
    """The environment with CELERY_ENV=production, once its servers answer."""
    env = {**settings.read_environment(), "CELERY_ENV": "production"}
    require_servers(create_app(settings.load(env)))
    default_app.set_current()
    return env


SETUPS = {"development": {"CELERY_ENV": "development"}, "production": {"CELERY_ENV": "production"}}


def setup_env(setup, folder):
    """The environment and a client app of a setup, on a data folder and a queue of its own."""
    env = {
        **os.environ,
        **SETUPS[setup],
        "CELERY_DATA_DIR": str(folder / "data"),
        "CELERY_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
    }
    app = create_app(settings.load(env))
    if setup == "production":
        require_servers(app)
    return env, app


def delete_queue(env, app):
    """Production tests use a queue of their own: remove it from RabbitMQ afterwards."""
    if env["CELERY_ENV"] == "production":
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(env["CELERY_QUEUE"])


@pytest.fixture
def setup_for(tmp_path):
    """setup_for(name) -> (environment, app): see setup_env."""
    made = []
    yield lambda setup: made.append(setup_env(setup, tmp_path)) or made[-1]
    for env, app in made:
        delete_queue(env, app)


@pytest.fixture(scope="session", params=list(SETUPS))
def celery_app(request, tmp_path_factory):
    """A client app and a worker subprocess, both in the setup of the param."""
    folder = tmp_path_factory.mktemp(request.param)
    env, app = setup_env(request.param, folder)
    log_file = folder / "worker.log"
    command = ["-m", "celery", "-A", app.main, "worker", "--concurrency=2", "--loglevel=INFO"]
    worker = start(command, env, log=open(log_file, "w"))
    app.set_current()  # shared tasks such as tsum now send through this app
    try:
        wait_until_ready(app, worker, log_file)
        yield app
    finally:
        stop(worker)
        delete_queue(env, app)
        default_app.set_current()
