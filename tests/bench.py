"""make bench: the development broker against Redis, RabbitMQ + Redis, and what a user
would otherwise pick to run Celery with no server.

Renders a project, then measures each setup in one run on this machine, with the
same worker (prefork, concurrency 2), twice: with Celery's default delivery
settings (early acknowledgement, prefetch 4) and with the project's own (late
acknowledgement, prefetch 1). Prints a table: median / p90 [runs] and the ratio
of the median to Redis's. A measure starts no new run after BOUND seconds, and
cuts off a run that takes longer: a cell "> 30" means a run did not finish in
30 s (or a smaller run of the same kind did not).
Redis and RabbitMQ are measured when they answer on 127.0.0.1 (.ci/services start).
"""

import argparse
import gc
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import chord_trace
from cookiecutter.main import cookiecutter

from conftest import free_port

TEMPLATE = Path(__file__).resolve().parent.parent
BOUND = 30  # seconds: no new run of a measure after this, and no run longer
SETUPS = {
    # kombu's filesystem transport and Celery's file backend on the same folders
    # (the worker and the client switch to them: see KOMBU below).
    "kombu-filesystem": {"CELERY_ENV": "development", "BENCH_KOMBU": "1"},
    "devfs": {"CELERY_ENV": "development"},
    # As on the BSDs (no inotify: the doorbell), as on macOS (the doorbell, and the
    # prefork pool spawned, not forked, as billiard does there), and as on WSL 2's
    # /mnt/c (nothing but polling), in the worker and the client
    # (celery_devfs.testing.watch_as).
    "devfs-no-inotify": {"CELERY_ENV": "development", "BENCH_WATCH": "doorbell"},
    "devfs-macos": {"CELERY_ENV": "development", "BENCH_WATCH": "macos"},
    "devfs-polling": {"CELERY_ENV": "development", "BENCH_WATCH": "polling"},
    "redis": {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/2",
    },
    "rabbitmq+redis": {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/3",
    },
    # The no-server alternatives: kombu's SQLAlchemy transport and Celery's database
    # backend on SQLite files, and Celery's Redis broker and backend on fakeredis's
    # TCP server (started by the bench: see FAKEREDIS). {data} is the setup's folder.
    "sqlite": {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": "sqla+sqlite:///{data}/broker.sqlite",
        "CELERY_RESULT_BACKEND": "db+sqlite:///{data}/results.sqlite",
    },
    "fakeredis": {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": "redis://127.0.0.1:{port}/0",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:{port}/1",
    },
}
FAKEREDIS = """
import sys
from fakeredis import TcpFakeServer
TcpFakeServer(("127.0.0.1", int(sys.argv[1])), server_type="redis").serve_forever()
"""
# The delivery settings each setup is measured with; the rest is the project's.
SETTINGS = {
    "Celery's defaults": {"task_acks_late": False, "worker_prefetch_multiplier": 4},
    "project's settings": {},  # settings.py: late acknowledgement, prefetch 1
}


WORKER = """
import json, os, sys
from celery_devfs.testing import watch_as
watch_as(os.environ.get("BENCH_WATCH"))
if os.environ.get("BENCH_TRACE"):  # the chord's breakdown: chord_trace.py
    sys.path.insert(0, {tests!r})
    import chord_trace
    chord_trace.install(os.environ["BENCH_TRACE"])
from {package} import app
if os.environ.get("BENCH_KOMBU"):
    results = app.conf.result_backend.removeprefix("devfs://")
    app.conf.update(broker_url="filesystem://localhost//", result_backend="file://" + results)
app.conf.update(json.loads(os.environ["BENCH_SETTINGS"]))
app.worker_main(["worker", "--pool=prefork", "--concurrency=2", "--loglevel=WARNING",
                *sys.argv[1:]])
"""


class Censored(float):
    """A measure that did not finish within its bound: at least this long."""


class Worker:
    def __init__(self, project, env, *args):
        code = WORKER.format(package=project.name, tests=str(Path(__file__).parent))
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=project,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, tsum, timeout=60):
        """Until the worker runs a task (not a ping: SQLAlchemy's transport has no
        broadcast, so no remote control)."""
        try:
            tsum.delay([1]).get(timeout=timeout)
        except Exception as exc:
            raise SystemExit(f"ERROR: the benchmark worker did not start: {exc!r}") from None

    def stop(self):
        """Warm shutdown; returns the seconds from SIGTERM to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return time.monotonic() - started

    def cpu_seconds(self):
        """CPU time of the worker and its pool processes so far."""
        ticks = 0
        for pid in [self.process.pid, *self.children()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def children(self):
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]


def timed(function, runs, app, scale=1):
    """Seconds of each run, `runs` of them or fewer: no new run starts after BOUND s
    in all. A run that takes over BOUND s itself is cut off and ends the list as
    Censored(BOUND)."""
    times, started = [], time.monotonic()
    for _ in range(runs):
        if times and time.monotonic() - started > BOUND:
            break
        began = time.perf_counter()
        try:
            function(BOUND)
        except TimeoutError:
            app.control.purge()  # what is left of the cut-off run
            return [t * scale for t in times] + [Censored(BOUND * scale)]
        times.append(time.perf_counter() - began)
    return [t * scale for t in times]


def measure(project, name, env, settings, quick):
    """Every measure of one setup with one set of delivery settings:
    {measure: [seconds or percent, ...]}."""

    def module(name):
        return importlib.import_module(f"{project.name}.{name}")

    from celery_devfs.testing import watch_as

    undo = watch_as(env.get("BENCH_WATCH"))
    try:
        return _measure(project, name, env, settings, quick, module)
    finally:
        undo()


def _measure(project, name, env, settings, quick, module):
    from celery import chord, group
    from celery.exceptions import TimeoutError as CeleryTimeout

    tsum = module("tasks").tsum
    app = module("celery").create_app(module("settings").load(env))
    if env.get("BENCH_KOMBU"):  # as in WORKER
        results = app.conf.result_backend.removeprefix("devfs://")
        app.conf.update(broker_url="filesystem://localhost//", result_backend="file://" + results)
    app.set_current()
    if name in ("redis", "rabbitmq+redis"):
        problems = importlib.import_module("celery_servers").unreachable(app)
        if problems:
            print(f"  skipped {name}: {problems[0]}", file=sys.stderr)
            return None
    env = {**env, "BENCH_SETTINGS": json.dumps(settings)}
    runs = 2 if quick else 1
    scale = 5 if quick else 1

    def get(result, timeout):
        try:
            return result.get(timeout=timeout)
        except CeleryTimeout as exc:
            raise TimeoutError() from exc

    def drain(n):
        def run(timeout):
            deadline = time.monotonic() + timeout
            for result in [tsum.delay([i, 1]) for i in range(n)]:
                get(result, max(0.01, deadline - time.monotonic()))

        return run

    def header(n):
        def run(timeout):
            return get(chord(group(tsum.si([i]) for i in range(n)), tsum.s()).delay(), timeout)

        return run

    def sample(timeout):
        return get(chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s()).delay(), timeout)

    results = {}
    worker = Worker(project, env)
    try:
        worker.wait_ready(tsum)
        app.control.purge()
        try:
            sample(60)  # warm up
        except TimeoutError:
            died = worker.process.poll()
            why = f"its worker exited with {died}" if died is not None else "its worker is up"
            print(
                f"  {name}: the first chord did not end within 60 s ({why}); not measured",
                file=sys.stderr,
            )
            return None
        results["chord 2+1 round trip (ms)"] = timed(sample, 40 // scale, app, scale=1000)
        results["1000 tasks, send to last result (s)"] = timed(drain(1000), 6 // runs, app)
        results["chord with 100 header tasks (s)"] = timed(header(100), 6 // runs, app)
        big = f"{5000 // scale} tasks (s)"
        results[big] = (
            [Censored(BOUND)]  # not run: 1000 did not finish
            if isinstance(results["1000 tasks, send to last result (s)"][-1], Censored)
            else timed(drain(5000 // scale), 3 // runs or 1, app)
        )
        results["chord with 1000 header tasks (s)"] = (
            [Censored(BOUND)]
            if isinstance(results["chord with 100 header tasks (s)"][-1], Censored)
            else timed(header(1000), 3 // runs or 1, app)
        )
        time.sleep(2)
        idle = []
        for _ in range(4 // runs):  # 15 s each: a tick of CPU time (10 ms) is 0.07 %
            before = worker.cpu_seconds()
            time.sleep(15)
            idle.append((worker.cpu_seconds() - before) / 15 * 100)
        results["idle worker CPU (%)"] = idle
    finally:
        shutdown = [worker.stop()]
    for args in ([], ["-E"]):
        for _ in range(4 // runs):
            worker = Worker(project, env, *args)
            worker.wait_ready(tsum)
            time.sleep(1)
            shutdown.append(worker.stop())
        events = " with -E (events)" if args else ""
        results[f"warm shutdown{events}, SIGTERM to exit (s)"] = shutdown
        shutdown = []
    # Results of runs cut off by the bound are still awaited (Celery holds them): let
    # them go now, while Redis answers; at interpreter exit they fail, loudly.
    pending = getattr(app.backend, "_pending_results", None)  # {task id: {id: result}}
    for waiters in list(pending.concrete.values()) if pending else []:
        for result in list(waiters.values()):
            app.backend.remove_pending_result(result)
    gc.collect()
    return results


def traced(project, env, folder):
    """The breakdown of 40 chords 2+1 (chord_trace.py), traced in this process and in a
    worker with the project's settings: {segment: [ms, ...]}."""
    from celery import chord
    from celery_devfs.testing import watch_as

    trace = Path(folder) / "chord.trace"
    env = {**env, "BENCH_TRACE": str(trace), "BENCH_SETTINGS": "{}"}
    undo_watch = watch_as(env.get("BENCH_WATCH"))
    undo_trace = chord_trace.install(trace)
    project_module = importlib.import_module(f"{project.name}.celery")
    app = project_module.create_app(importlib.import_module(f"{project.name}.settings").load(env))
    app.set_current()
    tsum = importlib.import_module(f"{project.name}.tasks").tsum
    worker = Worker(project, env)
    chords = []
    try:
        worker.wait_ready(tsum)
        for run in range(41):
            start = time.monotonic_ns()
            assert chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s()).delay().get(timeout=60) == 10
            if run:  # the first warms up
                chords.append((start, time.monotonic_ns()))
    finally:
        worker.stop()
        undo_trace()
        undo_watch()
    return chord_trace.breakdown(trace.read_text().splitlines(), chords)


def cell(values, reference):
    if isinstance(values[-1], Censored):
        ratio = f" ×>{values[-1] / reference:.2g}" if reference else ""
        return f"> {values[-1]:.3g} [{len(values)}]{ratio}"
    median = statistics.median(values)
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    ratio = f" ×{median / reference:.2f}" if reference else ""
    return f"{median:.3g} / {p90:.3g} [{len(values)}]{ratio}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, 1000 not 5000 tasks")
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    args = parser.parse_args()
    table = {}  # (settings, measure) -> {setup: values}
    traces = {}  # setup -> {segment of a chord's path: [ms, ...]} (development setups)
    port = free_port()
    if "fakeredis" in args.setups:
        fakeredis = subprocess.Popen([sys.executable, "-c", FAKEREDIS, str(port)])
    with tempfile.TemporaryDirectory() as folder:
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=folder,
                extra_context={"project_name": "bench project"},
            )
        )
        sys.path.insert(0, str(project))
        try:
            for number, name in enumerate(args.setups):
                for first, (settings_name, settings) in enumerate(SETTINGS.items()):
                    print(f"measuring {name}, {settings_name}...", file=sys.stderr)
                    data = Path(folder) / f"data-{number}-{first}"
                    data.mkdir()
                    setup = {k: v.format(data=data, port=port) for k, v in SETUPS[name].items()}
                    env = {
                        **os.environ,
                        **setup,
                        "CELERY_DATA_DIR": str(data / "celery"),
                        "CELERY_QUEUE": f"bench-{os.getpid()}",
                    }
                    found = measure(project, name, env, settings, args.quick)
                    for row, values in (found or {}).items():
                        table.setdefault((settings_name, row), {})[name] = values
            for name in [n for n in args.setups if n.startswith("devfs")]:
                if SETUPS[name].get("BENCH_WATCH") == "macos":  # spawned: no trace in them
                    print(
                        f"{name} not traced: its pool processes are spawned, "
                        "without chord_trace's hooks",
                        file=sys.stderr,
                    )
                    continue
                print(f"tracing chords on {name}...", file=sys.stderr)
                data = Path(folder) / f"trace-{name}"
                data.mkdir()
                env = {
                    **os.environ,
                    **SETUPS[name],
                    "CELERY_DATA_DIR": str(data / "celery"),
                    "CELERY_QUEUE": f"bench-{os.getpid()}",
                }
                traces[name] = traced(project, env, data)
        finally:
            if "fakeredis" in args.setups:
                fakeredis.terminate()
    names = [name for name in args.setups if any(name in row for row in table.values())]
    print("| measure | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for (settings_name, row), found in table.items():
        reference = statistics.median(found["redis"]) if "redis" in found else None
        if reference is not None and isinstance(found["redis"][-1], Censored):
            reference = None
        cells = [cell(found[name], reference) if name in found else "" for name in names]
        print(f"| {row}, {settings_name} | " + " | ".join(cells) + " |")
    print(
        f"\nmedian / p90 [runs] ×(median / Redis's median); > N: cut off after N s. "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; every setup: prefork, "
        "concurrency 2; Celery's defaults: early acks, prefetch 4; the project's "
        "settings: late acks, prefetch 1."
    )
    if traces:
        print(
            "\nWhere a chord 2+1's time goes (chord_trace.py; ms, median of 40, the "
            "project's settings; the segments' medians need not add up to the total's):\n"
        )
        print("| segment of the chord's path | " + " | ".join(traces) + " |")
        print("|---" * (len(traces) + 1) + "|")
        for segment in next(iter(traces.values())):
            cells = [chord_trace.median_ms(rows[segment]) for rows in traces.values()]
            print(f"| {segment} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
