"""The project's package: `celery -A <package> worker` finds the Celery app here."""

from .celery import app

__all__ = ("app",)
