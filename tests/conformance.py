"""make conformance: Celery's own integration tests on the development broker, beside Redis.

Celery's t/integration/test_canvas.py and test_tasks.py, from the sdist of the
Celery installed here (`pip download --no-binary :all:`, kept in .conformance/),
run as Celery's CI runs them (its conftest, TEST_BROKER / TEST_BACKEND or an
integration-tests-config.json), with a per-test timeout of 60 s and one rerun,
once per setup:

- devfs: celery_devfs's broker and result backend, from a rendered project,
  on a fresh data folder;
- redis: Redis as broker and backend on 127.0.0.1 (.ci/services start), when
  it answers; otherwise it is left out, with the reason.

Prints passed / failed / skipped per setup, then every test that fails on the
development broker, with what it does on Redis. Exits 1 when one fails that
EXPECTED does not list with its reason.
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
}
SETUP_TIMEOUT = 45 * 60  # seconds for one setup's run; a whole run takes far less


def celery_suite():
    """The sdist's t/ folder and pytest settings, for the installed Celery."""
    version = importlib.metadata.version("celery")
    folder = CACHE / f"celery-{version}"
    if not (folder / "t" / "integration" / "conftest.py").exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"celery=={version}", "--dest", str(CACHE)],
            check=True,
        )  # fmt: skip
        with tarfile.open(CACHE / f"celery-{version}.tar.gz") as sdist:
            top = f"celery-{version}/"
            members = [
                m for m in sdist.getmembers()
                if m.name.startswith(top + "t/") or m.name == top + "pyproject.toml"
            ]  # fmt: skip
            # Only t/ and the pytest settings: Celery itself is the installed one.
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
    """Run the suite for one setup; {test id: passed | failed | skipped | xfailed}."""
    report = work / f"{setup}.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(devfs_root), str(TEMPLATE / "tests")])}
    (suite / "integration-tests-config.json").unlink(missing_ok=True)
    if setup == "devfs":
        env["CONFORMANCE_DEVFS_DATA"] = str(work / "data")
    else:
        env.update(TEST_BROKER=f"{REDIS}/10", TEST_BACKEND=f"{REDIS}/11")
        import redis

        for db in (10, 11):
            redis.Redis.from_url(f"{REDIS}/{db}").flushdb()
    command = [
        sys.executable, "-m", "pytest", *FILES, *selection,
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
    parser.add_argument("--setups", default="devfs,redis", help="comma-separated: devfs, redis")
    parser.add_argument("selection", nargs="*", help="more pytest arguments (-k ..., for a subset)")
    args = parser.parse_args()
    setups = args.setups.split(",")
    if "redis" in setups and (why := redis_answers()):
        print(f"redis: left out: {why}")
        setups.remove("redis")
    suite = celery_suite()
    results, minutes = {}, {}
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        work = Path(tmp)
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work)))
        for setup in setups:
            results[setup], minutes[setup] = run(setup, suite, project, work, args.selection)
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
    devfs = results.get("devfs", {})
    redis_results = results.get("redis", {})
    unexpected = []
    failing = sorted(t for t, v in devfs.items() if v == "failed")
    if failing:
        print("\nFailing on the development broker:")
    for test in failing:
        on_redis = redis_results.get(test, "not run")
        reason = EXPECTED.get(test)
        print(f"- {test} (Redis: {on_redis}): {reason or 'NOT EXPECTED'}")
        if reason is None:
            unexpected.append(test)
    passing_expected = [t for t in EXPECTED if devfs.get(t) == "passed"]
    for test in passing_expected:
        print(f"- {test} passes now: take it out of EXPECTED in tests/conformance.py")
    return 1 if unexpected or passing_expected else 0


if __name__ == "__main__":
    sys.exit(main())
