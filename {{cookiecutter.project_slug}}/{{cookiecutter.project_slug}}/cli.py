"""What the Makefile runs: `python -m <package>.cli check|servers|demo|clean|flower|...`;
infrastructure the template keeps up to date, beside your code."""

import contextlib
import os
import subprocess
import sys

import celery_devfs
from celery_devfs.migrate import development_left, migrate_command
from celery_servers import problem, results_kept, servers, unreachable

from . import app, settings
from .tasks import sample_chord

TIMEOUT = 60  # seconds make demo waits for the chord
FLOWER_LOGIN = "FLOWER_BASIC_AUTH=user:password in .env"


def check(env):
    print(f"environment: {env.get('CELERY_ENV') or 'development'}")
    found = servers(app)
    for name, url, why in found:
        print(f"{name + ':':9}{url} " + (problem(name, why, app) if why else "ok"))
    if app.conf.broker_url.startswith("devfs:"):
        files = [p for p in settings.data_dir(env).rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files if p.exists())
        print(f"{'data:':9}{settings.data_dir(env)} ({len(files)} files, {size / 1024:.1f} KiB)")
    elif line := development_left(settings.data_dir(env)):  # switched: nothing lost unsaid
        print(f"{'note:':9}{line}")
    if not any(why for _, _, why in found):
        expires = app.backend.expires  # seconds
        kept = f"each for {expires / 3600:g} h" if expires else "for ever"
        print(f"{'results:':9}{results_kept(app)} kept, {kept} (result_expires in settings.py)")
    return 1 if any(why for _, _, why in found) else 0


@contextlib.contextmanager
def worker_running(log_file):
    """Use the workers on our queue (another project's worker answers pings too), or
    run one until the block ends. Yields where to look when the chord gives no result."""
    queue = app.conf.task_default_queue
    with app.connection_for_write() as connection:  # RabbitMQ and celery_devfs count consumers
        declared = app.amqp.queues[queue].bind(connection.default_channel).queue_declare()
    if declared.consumer_count:  # ask their names now: a busy worker may not answer later
        replies = app.control.inspect(timeout=1.0).active_queues() or {}
        names = sorted(n for n, qs in replies.items() if queue in {q["name"] for q in qs})
        yield f"the output of {', '.join(names) or 'the workers on ' + queue}"
        return
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # results: yours only
    with os.fdopen(fd, "ab") as log:
        # `celery -A <package> worker --pool=solo` without the half second its command
        # line takes to import, nor Mingle (a worker for one chord needs no revokes: 1 s).
        start = f"from {app.main} import app; app.Worker(pool='solo', without_mingle=True).start()"
        command = [sys.executable, "-c", start]
        worker = subprocess.Popen(command, cwd=settings.PROJECT_ROOT, stdout=log, stderr=log)
    try:
        yield str(log_file)
    finally:
        worker.terminate()  # SIGTERM: a warm shutdown
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def demo(env):
    for line in unreachable(app):
        return f"ERROR: {line}"
    with worker_running(made_data_dir(env) / "demo-worker.log") as where:
        result = sample_chord().delay()
        try:
            print(result.get(timeout=TIMEOUT))
            return 0
        except Exception as exc:  # the task's own error, or TimeoutError
            return f"ERROR: the chord failed ({type(exc).__name__}: {exc}); see {where}"
        finally:
            # Redis: unsubscribe now; left to AsyncResult.__del__, it fails at exit, loudly.
            consumer = getattr(app.backend, "result_consumer", None)
            if consumer:
                for task_id in [result.id, *(part.id for part in result.parent.results)]:
                    consumer.cancel_for(task_id)


def clean(env):
    path = settings.data_dir(env)
    try:
        kept = celery_devfs.remove_data_folders(path, protect=settings.CODE)
    except celery_devfs.DataFolderError as exc:
        return f"ERROR: CELERY_DATA_DIR={str(path)!r} {exc}; nothing deleted"
    if kept:
        print(f"kept {path}: it also holds {', '.join(kept)}, not ours")
    return 0


def flower(env):
    """Flower on 127.0.0.1 (FLOWER_ADDRESS: 0.0.0.0 in a container) at FLOWER_PORT (5555),
    behind FLOWER_BASIC_AUTH."""
    logins = [login.split(":", 1) for login in (env.get("FLOWER_BASIC_AUTH") or "").split(",")]
    if not all(len(x) == 2 and x[0] and x[1] not in ("", "change-me") for x in logins):
        return "ERROR: make flower needs a login of your own: " + FLOWER_LOGIN
    # Flower reads its login from the environment: on its command line, ps would show it.
    os.environ["FLOWER_BASIC_AUTH"] = env["FLOWER_BASIC_AUTH"]
    port = f"--port={env.get('FLOWER_PORT') or 5555}"
    address = f"--address={env.get('FLOWER_ADDRESS') or '127.0.0.1'}"
    command = [sys.executable, "-m", "celery", "-A", app.main, "flower", address]
    os.execv(sys.executable, [*command, port])


def made_data_dir(env):
    """The data folder, created owner-only if missing (in production too: beat, demo)."""
    settings.data_dir(env).mkdir(mode=0o700, parents=True, exist_ok=True)
    return settings.data_dir(env)


def main(command):
    commands = {"check": check, "demo": demo, "clean": clean, "flower": flower}
    down = lambda: "\n".join(f"ERROR: {line}" for line in unreachable(app))  # noqa: E731
    commands["servers"] = lambda env: down() or 0
    commands["data-dir"] = lambda env: print(made_data_dir(env))
    commands["env"] = lambda env: print(env.get("CELERY_ENV") or "development")
    commands["migrate"] = lambda env: down() or migrate_command(settings.data_dir(env), app)
    if command not in commands:
        return f"usage: python -m {__name__} {'|'.join(commands)}"
    return commands[command](settings.read_environment())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
