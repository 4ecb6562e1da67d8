"""The project's tasks. Keep them thin: the work belongs in plain functions."""

from celery import shared_task


@shared_task
def tsum(numbers):
    """Add up a list of numbers."""
    return sum(numbers)
