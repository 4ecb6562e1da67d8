"""The project's tasks. Keep them thin: the work belongs in plain functions."""

from celery import chord, shared_task


@shared_task
def tsum(numbers):
    """Add up a list of numbers."""
    return sum(numbers)


def sample_chord():
    """Add 1+2 and 3+4 in parallel, then the two sums: 10 (what `make demo` runs)."""
    return chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s())
