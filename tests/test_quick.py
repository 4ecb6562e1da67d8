"""The quick layer of the template's CI (.github/workflows/ci.yml): every runner of its
matrix (Linux, macOS; Python 3.10 to 3.14) runs `make test-quick`, and `make test`
runs this file here too. A project rendered for PROJECT_PYTHON (default 3.10, the
oldest offered: pyenv's here) passes, with that Python, `make demo`, `make lint`,
its own tests (the development ones again within 256 open files, macOS's default)
and celery_devfs's whole suite. UPSTREAM=newest (the weekly job) first upgrades celery, kombu and
billiard to their newest releases, pre-releases included, so that an upstream
change is seen here before users see it."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import BIN, other_python, run, uv_first

pytestmark = [pytest.mark.slow, pytest.mark.quick]
PROJECT_PYTHON = os.environ.get("PROJECT_PYTHON", "3.10")
UPSTREAM = os.environ.get("UPSTREAM", "pinned")
UPSTREAM_PACKAGES = ("celery", "kombu", "billiard")
UV_ENV = uv_first()
VERSIONS = "import sys, celery, kombu, billiard; print(*sys.version_info[:2], sep='.'); "
VERSIONS += "print(celery.__version__, kombu.__version__, billiard.__version__)"


def on_path(name):
    """`name` on PATH, if it runs (a pyenv shim may be there for a Python not chosen)."""
    path = shutil.which(name)
    if path and subprocess.run([path, "-c", "pass"], capture_output=True).returncode == 0:
        return path
    return None


@pytest.fixture(scope="module")
def project(cookies_session):
    answers = {"project_name": "Quick Check", "python_version": PROJECT_PYTHON}
    result = cookies_session.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    project = result.project_path
    # The Makefile takes python3.X from PATH (as GitHub's setup-python puts it there);
    # here, pyenv's Pythons are not on PATH.
    python = on_path(f"python{PROJECT_PYTHON}") or other_python(PROJECT_PYTHON)
    started = time.monotonic()
    run(["make", "install", f"PYTHON={python}"], project, **UV_ENV)
    if UPSTREAM == "newest":
        upgrade = [BIN / "uv", "pip", "install", "--quiet", "--python", ".venv", "--upgrade"]
        run([*upgrade, "--prerelease=allow", *UPSTREAM_PACKAGES], project, **UV_ENV)
    found = run([".venv/bin/python", "-c", VERSIONS], project).stdout.split()
    print(
        f"Python {found[0]}, celery {found[1]}, kombu {found[2]}, billiard {found[3]} "
        f"({UPSTREAM}): installed in {time.monotonic() - started:.1f} s"
    )
    assert found[0] == PROJECT_PYTHON
    return project


def within_256_open_files(command):
    """As macOS gives a shell by default (ulimit -n)."""
    return ["bash", "-c", f"ulimit -n 256 && {command}"]


def test_demo_prints_10(project):
    done = run(within_256_open_files("make demo"), project)
    assert done.stdout.splitlines()[-1] == "10"


def test_lint_and_the_projects_own_tests_pass(project):
    run(["make", "lint"], project)
    assert " passed" in run(["make", "test"], project).stdout


def test_development_runs_within_256_open_files(project):
    """The project's development tests, 200 threads waiting at once included: they
    share one watch. (Production's Redis backend holds connections per thread,
    Celery's design: 200 threads there need more than 256.)"""
    tests = '.venv/bin/python -m pytest -q -p no:cacheprovider -m "not production"'
    assert " passed" in run(within_256_open_files(tests), project).stdout


def test_the_development_brokers_own_tests_pass(project):
    """celery_devfs's whole suite, stress and redelivery included; its internals check
    (test_internals.py) names any private kombu or Celery name that moved. Production
    ones skip where no server runs (GitHub's quick jobs), and fail when CI=true."""
    started = time.monotonic()
    out = run(["make", "test-devfs"], project, timeout=1200).stdout
    print(f"make test-devfs on Python {PROJECT_PYTHON}: {time.monotonic() - started:.1f} s")
    assert " passed" in out and " failed" not in out
    if os.environ.get("CI") == "true":
        assert "skipped" not in out
