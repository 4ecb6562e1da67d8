"""A real worker runs the tasks, in development and in production alike."""

import pytest
from celery import chord, group

from {{ cookiecutter.project_slug }}.tasks import sample_chord, tsum


def test_sample_chord_gives_10(celery_app):
    assert sample_chord().delay().get(timeout=30) == 10


def test_a_batch_of_tasks_all_return(celery_app):
    results = [tsum.delay([i, i]) for i in range(300)]
    assert [result.get(timeout=60) for result in results] == [2 * i for i in range(300)]


def test_a_chord_with_a_large_header(celery_app):
    header = group(tsum.si([i]) for i in range(200))
    assert chord(header, tsum.s()).delay().get(timeout=60) == sum(range(200))


def test_an_error_in_a_task_reaches_the_caller(celery_app):
    result = tsum.delay([1, "a"])
    with pytest.raises(TypeError):
        result.get(timeout=30)
    assert result.state == "FAILURE"
