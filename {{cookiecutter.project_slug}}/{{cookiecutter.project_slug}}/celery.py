"""The Celery app, configured from settings.py."""

import os

from celery import Celery, signals
from celery.app.backends import BACKEND_ALIASES
from kombu.transport import TRANSPORT_ALIASES

from . import servers, settings

# URL schemes of the development broker and backend: devfs:// and devfile://.
# Only development settings use them, so no production URL can reach them.
TRANSPORT_ALIASES["devfs"] = f"{__package__}.devbroker:Transport"
BACKEND_ALIASES["devfile"] = f"{__package__}.devbackend:Backend"


def create_app(config):
    """A Celery app with the project's tasks and the given configuration."""
    app = Celery(__package__, include=[f"{__package__}.tasks"])
    if settings.uses_files(config):
        # Celery lets these variables win over the configuration: the
        # production URLs exported from .env must not turn development into production.
        for variable in (
            "CELERY_BROKER_URL",
            "CELERY_BROKER_READ_URL",
            "CELERY_BROKER_WRITE_URL",
            "CELERY_RESULT_BACKEND",
        ):
            os.environ.pop(variable, None)
    app.conf.update(config)
    return app


app = create_app(settings.load())


@signals.worker_init.connect
def stop_when_servers_do_not_answer(sender, **kwargs):
    """A worker whose broker or backend does not answer exits with one line saying why,
    instead of retrying in a loop that hides the cause."""
    for line in servers.unreachable(sender.app):
        raise SystemExit(f"ERROR: {line}")
