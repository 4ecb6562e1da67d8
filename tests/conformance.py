"""make conformance: Celery's own integration tests on the development broker, beside Redis.

Celery's t/integration/test_canvas.py and test_tasks.py, from the sdist of the
Celery installed here (`pip download --no-binary :all:`, kept in .conformance/),
run as Celery's CI runs them (its conftest, TEST_BROKER / TEST_BACKEND or an
integration-tests-config.json), with a per-test timeout of 60 s and one rerun,
once per setup:

- devfs: celery_devfs's broker and result backend, from a rendered project,
  on a fresh data folder;
- devfs+redis: celery_devfs's broker with Redis as the result backend, so that
  the tests that need a Redis backend for their own bookkeeping (skipped on
  devfs: "Requires redis result backend") exercise the development broker too;
- redis: Redis as broker and backend on 127.0.0.1 (.ci/services start).
A setup that needs Redis is left out, with the reason, when Redis does not answer.

Prints passed / failed / skipped per setup, then every test that fails on a
development setup, with what it does on Redis. Exits 1 when one fails that
EXPECTED does not list with its reason. --skipped-only: the setups after the
first run only the tests the first one skipped (make test: devfs, then the
tests it skips on devfs+redis).
"""

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
CACHE = TEMPLATE / ".conformance"
FILES = ["t/integration/test_canvas.py", "t/integration/test_tasks.py"]
REDIS = "redis://127.0.0.1:6379"
# Tests that fail on the development broker, and why. Each one is checked:
# listed here and passing is reported too, so that the list stays true.
EXPECTED = {
    # They fail on Redis too (Celery 5.7.0, measured by make conformance).
    "test_canvas.py::test_chain::test_chord_header_id_duplicated_on_rabbitmq_msg_duplication"
    "[redis-group-ids]": "reads Redis itself for its assertions; an expected failure on Redis",
    "test_tasks.py::test_trace_log_arguments::test_task_success": "fails on Redis too: it "
    "looks in the test process's log for lines that the worker's pool processes write",
    "test_tasks.py::test_trace_log_arguments::test_task_failed": "fails on Redis too (as above)",
    # They fail on Redis as broker and backend too (Celery 5.7.0, --setups redis).
    **{
        f"test_canvas.py::test_chord::test_{name}": "fails on Redis too: subtests on "
        "which errbacks, and whether the body, run after a chord header task fails"
        for name in (
            "enabling_flag_allow_error_cb_on_chord_header",
            "disabling_flag_allow_error_cb_on_chord_header",
            "flag_allow_error_cb_on_chord_header_on_upgraded_chord",
        )
    },
}
SETUPS = ("devfs", "devfs+redis", "redis")
SETUP_TIMEOUT = 45 * 60  # seconds for one setup's run; a whole run takes far less


def sdist_tests(package="celery"):
    """The t/ folder and pytest settings of the sdist of the installed `package`
    (celery, kombu), kept in .conformance/."""
    version = importlib.metadata.version(package)
    folder = CACHE / f"{package}-{version}"
    if not (folder / "t" / "integration" / "__init__.py").exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"{package}=={version}", "--dest", str(CACHE)],
            check=True,
        )  # fmt: skip
        with tarfile.open(CACHE / f"{package}-{version}.tar.gz") as sdist:
            top = f"{package}-{version}/"
            members = [
                m for m in sdist.getmembers()
                if m.name.startswith(top + "t/") or m.name == top + "pyproject.toml"
            ]  # fmt: skip
            # Only t/ and the pytest settings: the package itself is the installed one.
            sdist.extractall(CACHE, members=members, filter="data")
    return folder


def redis_answers():
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS} does not answer ({exc}); start it: .ci/services start"
    return None


def run(setup, suite, devfs_root, work, selection):
    """Run the suite for one setup; {test id: passed | failed | skipped | xfailed}.
    `selection`: pytest arguments, after FILES unless it names tests itself."""
    report = work / f"{setup}.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(devfs_root), str(TEMPLATE / "tests")])}
    (suite / "integration-tests-config.json").unlink(missing_ok=True)
    if setup.startswith("devfs"):
        env["CONFORMANCE_DEVFS_DATA"] = str(work / f"data-{setup}")
    # The Redis backend in database 0, not flushed: the tests read the backend's keys
    # through their own connection to database 0 (tasks.get_redis_connection).
    if setup == "devfs+redis":
        env["CONFORMANCE_DEVFS_BACKEND"] = f"{REDIS}/0"
    if setup == "redis":
        env.update(TEST_BROKER=f"{REDIS}/10", TEST_BACKEND=f"{REDIS}/0")
        import redis

        redis.Redis.from_url(f"{REDIS}/10").flushdb()
    command = [
        sys.executable, "-m", "pytest",
        *([] if any("::" in s for s in selection) else FILES), *selection,
        "-p", "celery.contrib.pytest", "-p", "conformance_plugin", "-p", "no:cacheprovider",
        "--timeout=60", "--reruns=1", "-q", "--no-header",
        f"--junitxml={report}",
    ]  # fmt: skip
    started = time.monotonic()
    with open(work / f"{setup}.log", "w") as log:
        try:
            subprocess.run(command, cwd=suite, env=env, stdout=log, stderr=subprocess.STDOUT,
                           timeout=SETUP_TIMEOUT)  # fmt: skip
        except subprocess.TimeoutExpired:
            print(f"{setup}: stopped after {SETUP_TIMEOUT} s; see {work / f'{setup}.log'}")
    minutes = (time.monotonic() - started) / 60
    return outcomes(report) if report.exists() else {}, minutes


def outcomes(report):
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        module, _, cls = case.get("classname").rpartition(".")  # t.integration.test_x.test_class
        test = f"{Path(*module.split('.')).name}.py::{cls}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            found[test] = "failed"
        elif (skipped := case.find("skipped")) is not None:
            found[test] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            found.setdefault(test, "passed")
    return found


def count(found):
    kinds = ("passed", "failed", "skipped", "xfailed")
    return {kind: sum(1 for v in found.values() if v == kind) for kind in kinds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setups", default="devfs,devfs+redis,redis", help="comma-separated: " + ", ".join(SETUPS)
    )
    parser.add_argument("--skipped-only", action="store_true", help="(see above)")
    parser.add_argument("selection", nargs="*", help="more pytest arguments (-k ..., for a subset)")
    args = parser.parse_args()
    setups = args.setups.split(",")
    if unknown := set(setups) - set(SETUPS):
        parser.error(f"unknown setups {', '.join(sorted(unknown))}; choose: {', '.join(SETUPS)}")
    for setup in [s for s in setups if "redis" in s]:
        if why := redis_answers():
            print(f"{setup}: left out: {why}")
            setups.remove(setup)
    suite = sdist_tests()
    results, minutes = {}, {}
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        work = Path(tmp)
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work)))
        for setup in setups:
            selection = args.selection
            if args.skipped_only and results:
                first = results[setups[0]]
                selection = [f"t/integration/{t}" for t, v in first.items() if v == "skipped"]
                if not selection:
                    results[setup], minutes[setup] = {}, 0.0
                    continue
            results[setup], minutes[setup] = run(setup, suite, project, work, selection)
            if not results[setup]:
                print(f"{setup}: no report; the end of its log:")
                print((work / f"{setup}.log").read_text()[-3000:])
                return 1
    version = importlib.metadata.version("celery")
    files = " and ".join(Path(f).name for f in FILES)
    print(f"\nCelery {version}'s {files}, timeout 60 s, 1 rerun")
    print("| setup | passed | failed | skipped | xfailed | minutes |\n|---|---|---|---|---|---|")
    for setup in setups:
        c = count(results[setup])
        print(f"| {setup} | {c['passed']} | {c['failed']} | {c['skipped']} | {c['xfailed']} "
              f"| {minutes[setup]:.1f} |")  # fmt: skip
    redis_results = results.get("redis", {})
    unexpected = []
    development = [s for s in setups if s.startswith("devfs")]
    for setup in development:
        found = results[setup]
        failing = sorted(t for t, v in found.items() if v == "failed")
        if failing:
            print(f"\nFailing on {setup}:")
        for test in failing:
            on_redis = redis_results.get(test, "not run")
            reason = EXPECTED.get(test)
            print(f"- {test} (Redis: {on_redis}): {reason or 'NOT EXPECTED'}")
            if reason is None:
                unexpected.append(test)
    # Listed, and passing wherever it ran: the list must stay true.
    ran = {t: [results[s][t] for s in development if t in results[s]] for t in EXPECTED}
    passing_expected = [t for t, seen in ran.items() if seen and set(seen) == {"passed"}]
    for test in passing_expected:
        print(f"- {test} passes now: take it out of EXPECTED in tests/conformance.py")
    return 1 if unexpected or passing_expected else 0


if __name__ == "__main__":
    sys.exit(main())
