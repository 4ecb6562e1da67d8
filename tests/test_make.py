"""Drive the rendered project's Makefile as a newcomer would, from a fresh folder."""

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import clean_env, run

pytestmark = pytest.mark.slow
TARGETS = [
    "status",
    "beat",
    "flower",
    "help",
    "install",
    "worker",
    "demo",
    "test",
    "test-devfs",
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
    started = time.monotonic()
    assert " passed" in run(["make", "test"], project).stdout
    print(f"make test (the user's tests): {time.monotonic() - started:.1f} s")
    assert processes_of(project) == []


def test_the_development_brokers_own_tests_pass(project):
    # celery_devfs's whole suite, stress and redelivery included: run at every template change.
    started = time.monotonic()
    out = run(["make", "test-devfs"], project).stdout
    print(f"make test-devfs: {time.monotonic() - started:.1f} s")
    assert " passed" in out and " failed" not in out and "skipped" not in out
    assert processes_of(project) == []


def test_check_reports_the_development_folders(project):
    out = run(["make", "check"], project).stdout
    assert "environment: development" in out
    assert "broker:  devfs:// ok" in out
    assert f"backend: devfs://{project / '.celery' / 'results'} ok" in out
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


def start_make(project, target):
    return subprocess.Popen(
        ["make", target],
        cwd=project,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_make(process):
    """Ctrl-C, as a user would; returns all it printed."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[0]


def tsum(project, numbers):
    code = f"from make_me.tasks import tsum; print(tsum.delay({numbers}).get(timeout=30))"
    return run([project / ".venv/bin/python", "-c", code], project).stdout.strip()


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.2)


def test_status_without_a_worker_says_so(project):
    run(["make", "install"], project)  # so that only the target's own output is left
    done = run(["make", "status"], project, check=False)
    assert done.returncode != 0
    assert "No nodes replied within time constraint" in done.stdout + done.stderr


def test_worker_reloads_on_code_changes_but_not_on_data(project):
    tasks = project / "make_me" / "tasks.py"
    source = tasks.read_text()
    worker = start_make(project, "worker")
    try:
        assert tsum(project, [1, 2]) == "3"
        assert "OK" in run(["make", "status"], project).stdout  # celery inspect active
        tasks.write_text(source.replace("return sum(numbers)", "return sum(numbers) + 100"))
        edited = time.monotonic()
        wait_for(lambda: tsum(project, [1, 2]) == "103", 30, "reload")
        print(f"new code answered {time.monotonic() - edited:.1f} s after the edit")
        for n in range(20):  # what the broker and backend do all day: no restart
            (project / ".celery" / "results" / f"scratch-{n}.py").write_text("x = 1\n")
        (project / ".celery" / "scratch.py").write_text("x = 1\n")
        time.sleep(3)
        assert tsum(project, [1, 2]) == "103"
    finally:
        tasks.write_text(source)
        (project / ".celery" / "scratch.py").unlink(missing_ok=True)  # not the project's
        output = stop_make(worker)
    assert output.count(" ready.") == 2, output  # started, then reloaded once


def test_beat_keeps_its_files_in_the_data_folder_owner_only(project):
    beat = start_make(project, "beat")
    try:
        wait_for(lambda: (project / ".celery" / "beat.pid").exists(), 30, "beat pid file")
        wait_for(lambda: list((project / ".celery").glob("beat-schedule*")), 30, "schedule file")
        for path in project.glob(".celery/beat*"):
            assert path.stat().st_mode & 0o077 == 0, f"{path} is not owner-only"
    finally:
        output = stop_make(beat)
    assert "beat: Starting..." in output
    assert not (project / ".celery" / "beat.pid").exists()  # removed at exit


def test_flower_in_development_says_why_not(project):
    run(["make", "install"], project)  # so that only the target's own output is left
    done = run(["make", "flower"], project, check=False)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: Flower is for production")


def test_clean_refuses_a_data_dir_that_is_not_ours_and_deletes_nothing(project):
    sources = sorted(p.name for p in (project / "make_me").iterdir())
    for value in ("make_me", "/usr", "~"):
        done = run(["make", "clean"], project, check=False, CELERY_DATA_DIR=value)
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if not line.startswith("make")]
        assert len(errors) == 1 and errors[0].startswith(f"ERROR: CELERY_DATA_DIR={value!r}")
    assert sorted(p.name for p in (project / "make_me").iterdir()) == sources


def test_a_bad_setting_stops_make_worker_and_demo_with_one_line(project):
    run(["make", "install"], project)  # so that only the target's own output is left
    for target in ("worker", "demo"):
        done = run(["make", target], project, check=False, CELERY_DATA_DIR="pyproject.toml")
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if not line.startswith("make")]
        assert len(errors) == 1 and "is a file, not a folder" in errors[0], done.stderr


def test_clean_removes_the_data_and_the_project_still_works(project):
    (project / ".celery" / "notes.txt").write_text("mine")  # not the project's: kept
    assert "kept " in run(["make", "clean"], project).stdout
    assert sorted(p.name for p in (project / ".celery").iterdir()) == [
        ".celery-data-folder",
        "notes.txt",
    ]
    (project / ".celery" / "notes.txt").unlink()
    run(["make", "clean"], project)
    assert not (project / ".celery").exists()
    assert [p for p in project.glob("**/__pycache__") if ".venv" not in p.parts] == []
    assert run(["make", "demo"], project).stdout.splitlines()[-1] == "10"
