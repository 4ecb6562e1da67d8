"""Celery's own integration suite (t/integration/test_canvas.py and test_tasks.py)
on the development broker and backend, as `make conformance` runs it but without
the setups that use Redis: every test passes, or tests/conformance.py lists it with
the reason. About eleven minutes on 2 cores (the devfs+redis setup would add about
sixteen, past CI's budget: make conformance runs it); make test-fast leaves it out."""

import sys

import pytest

from conftest import TEMPLATE, run


@pytest.mark.slow
def test_celerys_integration_suite_passes_on_the_development_broker():
    done = run(
        [sys.executable, "tests/conformance.py", "--setups", "devfs"],
        TEMPLATE,
        timeout=50 * 60,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
