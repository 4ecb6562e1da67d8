"""The quick layer of the template's CI (.github/workflows/ci.yml): every runner of its
matrix (Linux, macOS; Python 3.10 to 3.14) runs `make test-quick`, and `make test`
runs this file here too. A project rendered for PROJECT_PYTHON (default 3.10, the
oldest offered: pyenv's here) passes, with that Python, `make demo`, `make lint`, its
own tests and celery_devfs's whole suite. UPSTREAM=newest (the weekly job) first
upgrades celery, kombu and billiard to their newest releases, pre-releases included,
so that an upstream change is seen here before users see it."""

import os
import shutil
import time

import pytest

from conftest import BIN, other_python, run

pytestmark = [pytest.mark.slow, pytest.mark.quick]
PROJECT_PYTHON = os.environ.get("PROJECT_PYTHON", "3.10")
UPSTREAM = os.environ.get("UPSTREAM", "pinned")
UPSTREAM_PACKAGES = ("celery", "kombu", "billiard")
# uv (the template's test group installs it) first on PATH, no Python downloads.
UV_ENV = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "UV_PYTHON_DOWNLOADS": "never"}
VERSIONS = "import sys, celery, kombu, billiard; print(*sys.version_info[:2], sep='.'); "
VERSIONS += "print(celery.__version__, kombu.__version__, billiard.__version__)"


@pytest.fixture(scope="module")
def project(cookies_session):
    answers = {"project_name": "Quick Check", "python_version": PROJECT_PYTHON}
    result = cookies_session.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    project = result.project_path
    # The Makefile takes python3.X from PATH (as GitHub's setup-python puts it there);
    # here, pyenv's Pythons are not on PATH.
    python = shutil.which(f"python{PROJECT_PYTHON}") or other_python(PROJECT_PYTHON)
    started = time.monotonic()
    run(["make", "install", f"PYTHON={python}"], project, **UV_ENV)
    if UPSTREAM == "newest":
        upgrade = [BIN / "uv", "pip", "install", "--quiet", "--python", ".venv", "--upgrade"]
        run([*upgrade, "--prerelease=allow", *UPSTREAM_PACKAGES], project, **UV_ENV)
    found = run([".venv/bin/python", "-c", VERSIONS], project).stdout.split()
    print(f"Python {found[0]}, celery {found[1]}, kombu {found[2]}, billiard {found[3]} "
          f"({UPSTREAM}): installed in {time.monotonic() - started:.1f} s")
    assert found[0] == PROJECT_PYTHON
    return project


def test_demo_prints_10(project):
    assert run(["make", "demo"], project).stdout.splitlines()[-1] == "10"


def test_lint_and_the_projects_own_tests_pass(project):
    run(["make", "lint"], project)
    assert " passed" in run(["make", "test"], project).stdout


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
