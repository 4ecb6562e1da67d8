"""Celery's own integration suite (t/integration/test_canvas.py and test_tasks.py)
on the development broker and backend, as `make conformance` runs it but without
the setups that use Redis: every test passes, or tests/conformance.py lists it with
the reason. About eleven minutes on 2 cores, mostly waiting, so it runs in the
background from the start of the session (conftest.py) and this test reads its
outcome (the devfs+redis setup would add about sixteen: make conformance runs it);
make test-fast leaves it out."""

import pytest


@pytest.mark.slow
def test_celerys_integration_suite_passes_on_the_development_broker(conformance_run):
    returncode, output = conformance_run
    print(output)
    assert returncode == 0, output[-9000:]
