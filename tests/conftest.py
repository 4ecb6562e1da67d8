"""Shared helpers: render the template, and run commands in the rendered project."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def clean_env(**extra):
    """The environment minus the project's variables (so .env decides) and an outer make's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "MAKE", "MFLAGS"))}
    return {**env, **extra}


def free_port():
    """A TCP port that nothing listens on, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uv_first(**extra):
    """Environment with uv (the template's test group installs it) first on PATH, so
    the generated Makefile installs with it, and no Python downloaded by uv."""
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    return {"PATH": path, "UV_PYTHON_DOWNLOADS": "never", **extra}


def other_python(version):
    """The path of another CPython of this machine (pyenv's: 3.9 to 3.13 here, and
    on CI, which runs on a machine of the same kind). Missing: the test fails on CI,
    where what we claim for each Python is proven, and skips elsewhere."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted(root.glob(f"{version}.*/bin/python{version}"))
    if found:
        return found[-1]
    if os.environ.get("CI") == "true":
        pytest.fail(f"Python {version} is not installed (looked in {root})")
    pytest.skip(f"Python {version} is not installed (looked in {root})")


def run(command, cwd, timeout=600, check=True, **extra_env):
    """Run a command in a rendered project; on failure, show all it printed."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=clean_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        pytest.fail(f"{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def start_in(project, command, **env):
    """`command` in the project, in a process group of its own, its output in a pipe."""
    return subprocess.Popen(
        command,
        cwd=project,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_in(process):
    """Ctrl-C to a process of start_in, as a user would; returns all it printed."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[0]


def run_generated_checks(project, *pytest_args):
    """The rendered project's own linter and test suite, in its folder."""
    run([BIN / "ruff", "check", "."], project)
    run([BIN / "ruff", "format", "--check", "."], project)
    return run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args], project
    )


def assert_pinned_and_read_only(workflow):
    """A GitHub workflow's actions pinned to commits (their version in a comment), its
    permissions read-only at the top and widened by no job, and the dependabot.yml
    beside it keeping the actions current."""
    text = workflow.read_text()
    flow = yaml.load(text, Loader=yaml.BaseLoader)  # "on" stays a string
    assert flow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in flow["jobs"].values())
    uses = re.findall(r"uses: (\S+)@(\S+)(.*)", text)
    assert uses and all(re.fullmatch(r"[0-9a-f]{40}", ref) for _, ref, _ in uses), uses
    assert all(re.fullmatch(r"\s+# v\d+(\.\d+)*", comment) for _, _, comment in uses), uses
    dependabot = yaml.safe_load((workflow.parent.parent / "dependabot.yml").read_text())
    assert [u["package-ecosystem"] for u in dependabot["updates"]] == ["github-actions"]


@pytest.fixture(scope="session")
def baked(cookies_session):
    """The template rendered with its defaults, shared by tests that only read it."""
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    return result.project_path


# Celery's integration suite on the development broker (test_conformance.py) spends
# its eleven minutes waiting, not computing (load about 0.2 on 2 cores): it starts in
# the background as soon as it is collected, and its test, moved last, collects the
# outcome.
CONFORMANCE = [sys.executable, "tests/conformance.py", "--setups", "devfs"]
conformance_key = pytest.StashKey()


def pytest_collection_modifyitems(items):
    # A stable sort: the other tests keep their order.
    items.sort(key=lambda item: item.path.name == "test_conformance.py")


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if any(item.path.name == "test_conformance.py" for item in session.items):
        output = tempfile.TemporaryFile("w+")
        process = subprocess.Popen(
            CONFORMANCE, cwd=TEMPLATE, env=clean_env(), stdout=output, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        session.config.stash[conformance_key] = (process, output)


def pytest_sessionfinish(session):
    if started := session.config.stash.get(conformance_key, None):
        process, output = started
        if process.poll() is None:  # the run was cut short
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()


@pytest.fixture
def conformance_run(request):
    """The background run of Celery's suite: (exit code, all it printed) once it ends."""
    process, output = request.config.stash[conformance_key]
    process.wait(timeout=50 * 60)
    output.seek(0)
    return process.returncode, output.read()
