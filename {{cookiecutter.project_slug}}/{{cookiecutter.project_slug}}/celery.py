"""The Celery app, configured from settings.py."""

import os

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
# Celery's current app is per thread: in a thread that did not import this module (a
# web server's, a ThreadPoolExecutor's), @shared_task tasks such as tsum would send
# through Celery's fallback app, to its default broker. As the default, ours is found
# from every thread.
app.set_default()
