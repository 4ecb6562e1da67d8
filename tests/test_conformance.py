"""Celery's own integration suite (t/integration/test_canvas.py and test_tasks.py)
on the development broker, as `make conformance` runs it but without Redis as the
broker beside it: the whole suite on celery_devfs, then the tests it skips there
(they need a Redis result backend) on celery_devfs's broker with Redis as the
backend. Every test passes, or tests/conformance.py lists it with the reason.
make test-fast leaves it out."""

import sys

import pytest

from conftest import TEMPLATE, run


@pytest.mark.slow
def test_celerys_integration_suite_passes_on_the_development_broker():
    done = run(
        [sys.executable, "tests/conformance.py", "--setups", "devfs,devfs+redis", "--skipped-only"],
        TEMPLATE,
        timeout=50 * 60,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
