"""A real worker runs the tasks, in development and in production alike."""

import subprocess
import sys

import pytest
from celery import chord, group

from {{ cookiecutter.project_slug }} import settings
from {{ cookiecutter.project_slug }}.tasks import sample_chord, tsum

# What a threaded web server does: each request's thread sends a task and waits for it.
THREADS = """
import threading
from {{ cookiecutter.project_slug }}.tasks import tsum

def request(i, right):
    try:
        right[i] = tsum.delay([i, 1]).get(timeout=60) == i + 1
    except Exception as exc:  # counted as wrong, and the first one shown
        right[i] = f"{type(exc).__name__}: {exc}"

right = [None] * 200
threads = [threading.Thread(target=request, args=(i, right)) for i in range(200)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
wrong = [r for r in right if r is not True]
print(f"{200 - len(wrong)} of 200 right", *wrong[:1], sep="; ")
"""


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


def test_tasks_sent_from_threads_reach_the_project(celery_setup):
    """In a new process, as a web server runs: 200 threads, none of them the one that
    imported the project, each sending tsum and waiting for its result."""
    env, _ = celery_setup
    command = [sys.executable, "-c", THREADS]
    done = subprocess.run(
        command, env=env, cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip() == "200 of 200 right", done.stdout + done.stderr
