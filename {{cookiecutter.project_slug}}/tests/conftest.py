"""A real worker for the integration tests, in each environment.

Development runs on a fresh data folder. Production runs against the servers
named in .env, on a queue of its own; when they do not answer, its tests skip,
or fail when CI=true (CI starts the servers).
"""

import os
import uuid

import pytest
from celery_devfs.testing import mark_production, servers_or_skip, start, stop, wait_until_ready
from celery_servers import unreachable

from {{ cookiecutter.project_slug }} import app as default_app
from {{ cookiecutter.project_slug }} import settings
from {{ cookiecutter.project_slug }}.celery import create_app

SETUPS = {"development": {"CELERY_ENV": "development"}, "production": {"CELERY_ENV": "production"}}


def pytest_collection_modifyitems(items):
    mark_production(items)  # `pytest -m "not production"`: development only


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
        servers_or_skip(unreachable(app))
    return env, app


@pytest.fixture(scope="session", params=list(SETUPS))
def celery_setup(request, tmp_path_factory):
    """(environment, client app) with a worker subprocess, all in the setup of the param."""
    folder = tmp_path_factory.mktemp(request.param)
    env, app = setup_env(request.param, folder)
    log_file = folder / "worker.log"
    command = ["-m", "celery", "-A", app.main, "worker", "--concurrency=2", "--loglevel=INFO"]
    worker = start(command, env, log=open(log_file, "w"))
    app.set_current()  # shared tasks such as tsum now send through this app
    try:
        wait_until_ready(app, worker, log_file)
        yield env, app
    finally:
        stop(worker)
        if env["CELERY_ENV"] == "production":  # its own queue: removed from RabbitMQ
            with app.connection_for_write() as connection:
                connection.default_channel.queue_delete(env["CELERY_QUEUE"])
        default_app.set_current()


@pytest.fixture(scope="session")
def celery_app(celery_setup):
    """The client app of celery_setup, whose worker is running."""
    return celery_setup[1]
