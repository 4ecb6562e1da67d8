"""The Celery app, configured from settings.py."""

import os

import celery_servers
from celery import Celery

from . import settings

# Celery lets these variables win over an app's configuration: in development
# they are dropped, so production URLs in your shell never reach a development run.
CELERY_URL_VARIABLES = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
CELERY_URL_VARIABLES += ("CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL")


def create_app(config):
    """A Celery app with the project's tasks and the given configuration."""
    app = Celery(__package__, include=[f"{__package__}.tasks"])
    if config["broker_url"].startswith("devfs:"):
        for variable in CELERY_URL_VARIABLES:
            os.environ.pop(variable, None)
    app.conf.update(config)
    return app


app = create_app(settings.load())
# Celery's current app is per thread: as the default too, ours is the one tsum.delay()
# finds from a web server's threads (not Celery's fallback app and default broker).
app.set_default()
# A deployed worker stops with one line when RabbitMQ refuses its login; countdowns
# find RabbitMQ's delay queues before any worker has declared them.
celery_servers.connect(app)
