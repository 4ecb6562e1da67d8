"""The Celery app, configured from settings.py."""

import os

from celery import Celery

from . import settings


def create_app(config):
    """A Celery app with the project's tasks and the given configuration."""
    app = Celery("{{ cookiecutter.project_slug }}", include=["{{ cookiecutter.project_slug }}.tasks"])
    if config["broker_url"].startswith("filesystem"):
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
