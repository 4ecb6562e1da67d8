"""make bench: the development broker against kombu's own, Redis, and RabbitMQ + Redis.

Renders a project, then measures each setup in one run on this machine, with
the same worker (prefork, concurrency 2) and the same Celery settings. Prints
a table: median / p90 [runs] and the ratio of the median to Redis's.
Redis and RabbitMQ are measured when they answer on 127.0.0.1 (.ci/services start).
"""

import argparse
import importlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
SETUPS = {
    # kombu's filesystem transport and Celery's file backend on the same folders
    # (the worker and the client switch to them: see KOMBU below).
    "kombu filesystem": {"CELERY_ENV": "development", "BENCH_KOMBU": "1"},
    "devfs (ours)": {"CELERY_ENV": "development"},
    "redis": {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/2",
    },
    "rabbitmq + redis": {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/3",
    },
}
# Every setup gets Celery's defaults for acknowledgement and prefetch, so that
# the table compares transports, not settings.
WORKER = """
import os, sys
from {package} import app
if os.environ.get("BENCH_KOMBU"):
    results = app.conf.result_backend.removeprefix("devfs://")
    app.conf.update(broker_url="filesystem://localhost//", result_backend="file://" + results)
app.conf.update(task_acks_late=False, worker_prefetch_multiplier=4)
app.worker_main(["worker", "--pool=prefork", "--concurrency=2", "--loglevel=WARNING"])
"""


class Worker:
    def __init__(self, project, env):
        code = WORKER.format(package=project.name)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=project,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, app, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if app.control.ping(timeout=0.2):
                return
        raise SystemExit("ERROR: the benchmark worker did not start")

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


def timed(function, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def measure(project, name, env, quick):
    """Every measure of one setup: {measure: [seconds or percent, ...]}."""
    from celery import chord, group

    def module(name):
        return importlib.import_module(f"{project.name}.{name}")

    tsum = module("tasks").tsum
    app = module("celery").create_app(module("settings").load(env))
    if env.get("BENCH_KOMBU"):  # as in WORKER
        results = app.conf.result_backend.removeprefix("devfs://")
        app.conf.update(broker_url="filesystem://localhost//", result_backend="file://" + results)
    app.set_current()
    if name in ("redis", "rabbitmq + redis"):
        problems = module("cli").unreachable(app)
        if problems:
            print(f"  skipped {name}: {problems[0]}", file=sys.stderr)
            return None
    runs = 2 if quick else 1
    scale = 5 if quick else 1
    results = {}
    worker = Worker(project, env)
    try:
        worker.wait_ready(app)
        app.control.purge()

        def drain(n):
            return lambda: [r.get(timeout=300) for r in [tsum.delay([i, 1]) for i in range(n)]]

        def header(n):
            return lambda: (
                chord(group(tsum.si([i]) for i in range(n)), tsum.s()).delay().get(timeout=300)
            )

        def sample():
            return chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s()).delay().get(timeout=60)

        sample()  # warm up
        results["chord 2+1 round trip (ms)"] = [t * 1000 for t in timed(sample, 40 // scale)]
        results["1000 tasks, send to last result (s)"] = timed(drain(1000), 6 // runs)
        results[f"{5000 // scale} tasks (s)"] = timed(drain(5000 // scale), 3 // runs or 1)
        results["chord with 100 header tasks (s)"] = timed(header(100), 6 // runs)
        results["chord with 1000 header tasks (s)"] = timed(header(1000), 3 // runs or 1)
        time.sleep(2)
        idle = []
        for _ in range(4 // runs):
            before = worker.cpu_seconds()
            time.sleep(5)
            idle.append((worker.cpu_seconds() - before) / 5 * 100)
        results["idle worker CPU (%)"] = idle
    finally:
        shutdown = [worker.stop()]
    for _ in range(4 // runs):
        worker = Worker(project, env)
        worker.wait_ready(app)
        time.sleep(1)
        shutdown.append(worker.stop())
    results["warm shutdown, SIGTERM to exit (s)"] = shutdown
    return results


def cell(values, reference):
    median = statistics.median(values)
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    ratio = f" ×{median / reference:.2f}" if reference else ""
    return f"{median:.3g} / {p90:.3g} [{len(values)}]{ratio}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, 1000 not 5000 tasks")
    args = parser.parse_args()
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
        table = {}
        for name, setup in SETUPS.items():
            print(f"measuring {name}...", file=sys.stderr)
            env = {
                **os.environ,
                **setup,
                "CELERY_DATA_DIR": f"{folder}/data-{len(table)}",
                "CELERY_QUEUE": f"bench-{os.getpid()}",
            }
            found = measure(project, name, env, args.quick)
            if found:
                table[name] = found
    names = list(table)
    print("| measure | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for row in next(iter(table.values())):
        reference = statistics.median(table["redis"][row]) if "redis" in table else None
        cells = [cell(table[name][row], reference) for name in names]
        print(f"| {row} | " + " | ".join(cells) + " |")
    print(
        f"\nmedian / p90 [runs] ×(median / Redis's median); {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}; Celery settings: prefork, concurrency 2, "
        "early acks, prefetch 4, for every setup"
    )


if __name__ == "__main__":
    main()
