"""The Celery app of this project: `celery -A {{ cookiecutter.project_slug }} worker` finds it here."""

from .celery import app

__all__ = ("app",)
