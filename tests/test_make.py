"""Drive the rendered project's Makefile as a newcomer would, from a fresh folder."""

import re
import subprocess
import time

import pytest

from conftest import run

pytestmark = pytest.mark.slow
TARGETS = [
    "help",
    "install",
    "worker",
    "demo",
    "test",
    "lint",
    "check",
    "purge",
    "clean",
    "services-up",
    "services-down",
]


@pytest.fixture(scope="module")
def project(cookies_session):
    result = cookies_session.bake(extra_context={"project_name": "Make Me"})
    assert result.exit_code == 0, result.exception
    return result.project_path


def processes_of(project):
    """Processes whose command line names the project (its .venv python, its workers)."""
    done = subprocess.run(["pgrep", "-af", str(project)], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def test_help_lists_every_target_in_one_line(project):
    lines = run(["make"], project).stdout.splitlines()
    listed = [re.match(r"\s+make (\S+)\s+\S", line).group(1) for line in lines]
    assert sorted(listed) == sorted(TARGETS)


def test_demo_from_a_fresh_folder_prints_10_and_leaves_nothing_running(project):
    assert not (project / ".venv").exists()
    started = time.monotonic()
    done = run(["make", "demo"], project)
    print(f"make demo from a fresh folder: {time.monotonic() - started:.1f} s")
    assert done.stdout.splitlines()[-1] == "10"
    assert processes_of(project) == []
    started = time.monotonic()
    assert run(["make", "demo"], project).stdout.splitlines()[-1] == "10"
    print(f"make demo, installed: {time.monotonic() - started:.1f} s")


def test_lint_and_test_pass(project):
    run(["make", "lint"], project)
    assert " passed" in run(["make", "test"], project).stdout
    assert processes_of(project) == []


def test_check_reports_the_development_folders(project):
    out = run(["make", "check"], project).stdout
    assert "environment: development" in out
    assert "broker:  devfs:// ok" in out
    assert f"backend: devfile://{project / '.celery' / 'results'} ok" in out
    assert re.search(rf"data:    {project / '.celery'} \(\d+ files, [\d.]+ KiB\)", out)


def test_an_unknown_environment_stops_a_make_target_with_one_line(project):
    done = run(["make", "check"], project, check=False, CELERY_ENV="staging")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert errors == [
        "ERROR: CELERY_ENV='staging' is not a known environment; "
        "set CELERY_ENV to one of development, production in .env"
    ]


def test_purge_drops_queued_messages(project):
    run(
        [
            project / ".venv/bin/python",
            "-c",
            "from make_me.tasks import tsum; [tsum.delay([i]) for i in range(3)]",
        ],
        project,
    )
    assert len(list((project / ".celery" / "queue").glob("*.msg"))) == 3
    assert "Purged 3 messages" in run(["make", "purge"], project).stdout
    assert list((project / ".celery" / "queue").glob("*.msg")) == []


def test_clean_removes_the_data_and_the_project_still_works(project):
    run(["make", "clean"], project)
    assert not (project / ".celery").exists()
    assert [p for p in project.glob("**/__pycache__") if ".venv" not in p.parts] == []
    assert run(["make", "demo"], project).stdout.splitlines()[-1] == "10"
