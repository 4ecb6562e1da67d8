"""Drive the rendered project's Makefile as a newcomer would, from a fresh folder."""

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from conftest import clean_env, free_port, run, start_in, stop_in, uv_first

pytestmark = pytest.mark.slow
# Debian's chromium and chromium-driver (.ci/run installs them); flags as for root
# on a machine whose only network is loopback.
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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
    "migrate",
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


def test_help_lists_every_target_in_one_line_aligned(project):
    lines = run(["make"], project).stdout.splitlines()
    found = [re.match(r"\s+make (\S+)( {2,})\S", line) for line in lines]
    assert sorted(m.group(1) for m in found) == sorted(TARGETS)
    assert len({m.end(2) for m in found}) == 1, lines  # every description in one column


def test_demo_from_a_fresh_folder_prints_10_and_leaves_nothing_running(project):
    assert not (project / ".venv").exists()
    started = time.monotonic()
    done = run(["make", "demo"], project, UV="")  # pip, even where uv is on PATH
    print(f"make demo from a fresh folder, with pip: {time.monotonic() - started:.1f} s")
    assert done.stdout.splitlines()[-1] == "10"
    assert "pip install" in done.stdout and "uv pip" not in done.stdout
    assert processes_of(project) == []
    started = time.monotonic()
    assert run(["make", "demo"], project).stdout.splitlines()[-1] == "10"
    print(f"make demo, installed: {time.monotonic() - started:.1f} s")


@pytest.fixture
def fresh_project(cookies):
    """A project of its own, with no .venv yet."""
    return cookies.bake(extra_context={"project_name": "Make Me"}).project_path


def test_make_install_with_a_python_that_has_no_pip(fresh_project, tmp_path):
    """Debian's python3 without python3-pip: ensurepip in .venv, then the newest pip."""
    project = fresh_project
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
    run(["make", "install", f"PYTHON={tmp_path / 'bare' / 'bin' / 'python'}"], project, UV="")
    code = "import make_me, flower, pip; print(pip.__version__)"
    version = run([".venv/bin/python", "-c", code], project).stdout.split(".")
    assert (int(version[0]), int(version[1])) >= (25, 1)  # what reads --group


def test_lint_and_test_pass(project):
    run(["make", "lint"], project)
    started = time.monotonic()
    assert " passed" in run(["make", "test"], project).stdout
    print(f"make test (the user's tests): {time.monotonic() - started:.1f} s")
    assert processes_of(project) == []


# make test-devfs, celery_devfs's whole suite: tests/test_quick.py runs it, with the
# oldest Python offered.


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


def start_make(project, target, **env):
    return start_in(project, ["make", target], **env)


def tsum(project, numbers):
    code = f"from make_me.tasks import tsum; print(tsum.delay({numbers}).get(timeout=30))"
    return run([project / ".venv/bin/python", "-c", code], project).stdout.strip()


def wait_for(condition, seconds, what):
    """What condition() returns once true; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.2)
    return found


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
        output = stop_in(worker)  # first: restoring tasks.py would reload it once more
        tasks.write_text(source)
        (project / ".celery" / "scratch.py").unlink(missing_ok=True)  # not the project's
    assert output.count(" ready.") == 2, output  # started, then reloaded once


def test_beat_keeps_its_files_in_the_data_folder_owner_only(project):
    beat = start_make(project, "beat")
    try:
        wait_for(lambda: (project / ".celery" / "beat.pid").exists(), 30, "beat pid file")
        wait_for(lambda: list((project / ".celery").glob("beat-schedule*")), 30, "schedule file")
        for path in project.glob(".celery/beat*"):
            assert path.stat().st_mode & 0o077 == 0, f"{path} is not owner-only"
    finally:
        output = stop_in(beat)
    assert "beat: Starting..." in output
    assert not (project / ".celery" / "beat.pid").exists()  # removed at exit


def test_flower_refuses_to_start_without_a_login_of_its_own(project):
    run(["make", "install"], project)  # so that only the target's own output is left
    for login in ("", "admin", "admin:", "admin:change-me", "me:s3cret,admin:change-me"):
        done = run(["make", "flower"], project, check=False, FLOWER_BASIC_AUTH=login)
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if not line.startswith("make")]
        assert errors == [
            "ERROR: make flower needs a login of your own: FLOWER_BASIC_AUTH=user:password in .env"
        ]


def require_servers(project, **env):
    """Skip when the production servers do not answer (make check); fail instead on CI."""
    done = run(["make", "check"], project, check=False, **env)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(done.stdout + done.stderr)
        pytest.skip("RabbitMQ or Redis does not answer: .ci/services start")


def flower_login(project):
    """The login that the post-gen hook wrote in .env, as (user, password)."""
    line = re.search(r"^FLOWER_BASIC_AUTH=(.*)$", (project / ".env").read_text(), re.M)
    return tuple(line.group(1).split(":", 1))


def flower_get(port, path, login=None):
    """(HTTP status, JSON or None) of a Flower page; status None while it does not answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if login:
        token = base64.b64encode(":".join(login).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            json_body = response.headers.get_content_type() == "application/json"
            return response.status, json.loads(body) if json_body else None
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return None, None


def send_tsums(project, count, **env):
    """Run `count` tsum tasks to the end; their ids."""
    code = (
        "from make_me.tasks import tsum\n"
        f"results = [tsum.delay([i, 1]) for i in range({count})]\n"
        "print(*[r.id for r in results if r.get(timeout=30) is not None])"
    )
    return run([project / ".venv/bin/python", "-c", code], project, **env).stdout.split()


@contextlib.contextmanager
def browser(login):
    """Debian's Chromium, headless, through chromedriver, sending the login with every
    request (the DevTools protocol's extra headers: no dialog to fill)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        token = base64.b64encode(":".join(login).encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        headers = {"headers": {"Authorization": f"Basic {token}"}}
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", headers)
        yield driver
    finally:
        driver.quit()


def page_text(driver, url, *expected, seconds=30):
    """The text of the page once it shows every expected string (its scripts ran)."""
    driver.get(url)
    body = driver.find_element(By.TAG_NAME, "body")
    WebDriverWait(driver, seconds).until(lambda _: all(s in body.text for s in expected))
    return body.text


def event_files(project):
    return [p.name for p in (project / ".celery" / "queue").iterdir() if ".celeryev." in p.name]


def monitors(project):
    """The queues bound to the event exchange: one per monitor."""
    try:
        rows = json.loads((project / ".celery" / "control" / "celeryev.exchange").read_text())
    except FileNotFoundError:
        return []
    return [queue for _, _, queue in rows]


@pytest.mark.parametrize("environment", ["development", "production"])
def test_flower_shows_the_worker_and_its_tasks_behind_its_login(project, environment):
    env = {"CELERY_ENV": environment}
    run(["make", "install"], project)
    if environment == "production":
        require_servers(project, **env)
    port = free_port()
    worker = start_make(project, "worker", **env)
    send_tsums(project, 1, **env)  # the worker is up: Flower's first questions get answers
    flower = start_make(project, "flower", FLOWER_PORT=str(port), **env)
    login, node = flower_login(project), f"celery@{socket.gethostname()}"
    try:
        wait_for(lambda: flower_get(port, "/api/workers", login)[0] == 200, 60, "Flower")

        def succeeded(ids):
            tasks = flower_get(port, "/api/tasks", login)[1] or {}
            return all(tasks.get(i, {}).get("state") == "SUCCESS" for i in ids) and tasks

        # Flower turns the worker's task events on (remote control) a few seconds in.
        sent = []
        wait_for(
            lambda: sent.extend(send_tsums(project, 1, **env)) or succeeded(sent[-1:]), 30, "events"
        )
        ids = send_tsums(project, 3, **env)
        tasks = wait_for(lambda: succeeded(ids), 30, "tasks in /api/tasks")
        assert {tasks[i]["name"] for i in ids} == {"make_me.tasks.tsum"}
        workers = flower_get(port, "/api/workers", login)[1]
        assert set(workers[node]) >= {"stats", "registered", "active_queues", "conf"}, workers
        for path in ("/api/workers", "/api/tasks", "/workers", "/"):
            assert flower_get(port, path)[0] == 401, path  # no login
            assert flower_get(port, path, (login[0], "wrong"))[0] == 401, path
        if environment == "development":
            with browser(login) as driver:
                url = f"http://127.0.0.1:{port}"
                assert "Online" in page_text(driver, f"{url}/workers", node)
                shown = page_text(driver, f"{url}/tasks", *ids)
                assert shown.count("make_me.tasks.tsum") >= 3 and "SUCCESS" in shown
    finally:
        os.killpg(flower.pid, signal.SIGKILL)  # a monitor that dies without a word
        output = flower.communicate()[0]
        assert "failed" not in output.lower(), output
    try:
        if environment == "development":
            # Its event queue stays, and events pile up in it, until its expiry
            # (Celery's event_queue_expires, 60 s); then nothing is left.
            assert len(monitors(project)) == 1
            send_tsums(project, 2, **env)
            left = len(event_files(project))
            wait_for(lambda: not monitors(project) and not event_files(project), 75, "expiry")
            send_tsums(project, 2, **env)
            print(f"event files after the kill: {left}, after the expiry: 0")
            assert event_files(project) == [] and monitors(project) == []
    finally:
        stop_in(worker)


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


@contextlib.contextmanager
def port_opening_late(target, seconds):
    """A loopback port that refuses connections for `seconds`, then forwards each one to
    `target` (host, port): a broker that comes up late, as under compose or systemd."""
    port = free_port()
    stop = threading.Event()

    def pump(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def serve():
        if stop.wait(seconds):
            return
        with socket.create_server(("127.0.0.1", port)) as listener:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    client = listener.accept()[0]
                except TimeoutError:
                    continue
                server = socket.create_connection(target)
                for ends in ((client, server), (server, client)):
                    threading.Thread(target=pump, args=ends, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join()


def test_a_deployed_worker_waits_for_a_broker_that_comes_up_late(project):
    run(["make", "install"], project)
    require_servers(project, CELERY_ENV="production")
    with port_opening_late(("127.0.0.1", 5672), seconds=10) as port:
        env = {"CELERY_ENV": "production", "CELERY_QUEUE": "late-broker"}
        env["CELERY_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:{port}//"
        started = time.monotonic()
        command = [project / ".venv/bin/celery", "-A", "make_me", "worker", "--concurrency=1"]
        worker = start_in(project, command, **env)
        try:
            code = "from make_me.tasks import tsum; print(tsum.delay([1, 2]).get(timeout=60))"
            client = {**env, "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}
            sent = run([project / ".venv/bin/python", "-c", code], project, timeout=90, **client)
            served_after = time.monotonic() - started
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            output = worker.communicate(timeout=30)[0]
    assert sent.stdout.strip() == "3", output
    assert served_after > 10, output  # it waited for the broker, not for a restart
    assert worker.returncode == 0, output  # alive until told to stop, then a warm shutdown
    retries = [line for line in output.splitlines() if "Cannot connect to" in line]
    assert retries, output  # Celery's own line at each retry, the password masked
    assert all(f"amqp://guest:**@127.0.0.1:{port}//" in line for line in retries), output
    code = "from make_me import app; app.connection().default_channel.queue_delete('late-broker')"
    run([project / ".venv/bin/python", "-c", code], project, CELERY_ENV="production")


def test_make_worker_without_its_broker_stops_at_once_with_one_line(project):
    run(["make", "install"], project)
    url = f"amqp://me:s3cret@127.0.0.1:{free_port()}//"
    started = time.monotonic()
    done = run(
        ["make", "worker"], project, check=False, timeout=60,
        CELERY_ENV="production", CELERY_BROKER_URL=url,
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert done.returncode != 0
    assert "s3cret" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    masked = url.replace("s3cret", "**")
    assert errors == [
        f"ERROR: broker {masked} unreachable (connection refused); start the servers "
        "(make services-up) or set CELERY_ENV=development in .env"
    ]


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


CELERY_BYTECODE = "lib/python3*/site-packages/celery/__pycache__/*.pyc"


def uv_env():
    """uv first on PATH, and no .pyc written when a module is imported (as in many
    Docker images): only the install can."""
    return uv_first(PYTHONDONTWRITEBYTECODE="1")


def test_make_demo_uses_uv_when_it_is_on_path(fresh_project):
    project, env, started = fresh_project, uv_env(), time.monotonic()
    done = run(["make", "demo"], project, **env)
    print(f"make demo from a fresh folder, with uv: {time.monotonic() - started:.1f} s")
    assert done.stdout.splitlines()[-1] == "10"
    assert " pip install" in done.stdout and "bin/uv pip install" in done.stdout
    assert "uv = " in (project / ".venv" / "pyvenv.cfg").read_text()  # made by uv
    # Compiled at install as pip does: else every demo would compile celery again
    # where PYTHONDONTWRITEBYTECODE is set (2 s, not 1).
    assert list((project / ".venv").glob(CELERY_BYTECODE))
    assert processes_of(project) == []


def test_uv_sync_and_uv_run_are_enough_without_make(fresh_project):
    project, env = fresh_project, uv_env()
    run(["uv", "sync"], project, **env)
    assert (project / ".venv" / "bin" / "ruff").exists()  # the dev group: uv sync's default
    assert list((project / ".venv").glob(CELERY_BYTECODE))  # [tool.uv] compile-bytecode
    worker = subprocess.Popen(
        ["uv", "run", "celery", "-A", "make_me", "worker", "--pool=solo"],
        cwd=project,
        env=clean_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code = "from make_me.tasks import tsum; print(tsum.delay([1, 2]).get(timeout=60))"
        assert run(["uv", "run", "python", "-c", code], project, **env).stdout.strip() == "3"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
