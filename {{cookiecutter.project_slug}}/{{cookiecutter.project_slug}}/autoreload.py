"""`make worker`: a worker in the foreground that, in development, restarts
when a .py file of the package changes.

Only the package folder is watched: the data folder, .venv and caches are
outside it, so the broker's own files never restart the worker. Production
workers do not reload. watchfiles uses each OS's own file notifications.
"""

import os
import shlex
import sys

from watchfiles import PythonFilter, run_process

from . import app, settings


def main():
    command = [sys.executable, "-m", "celery", "-A", app.main, "worker", "--loglevel=INFO"]
    if not settings.uses_files(app.conf):
        os.execv(sys.executable, command)  # production: a plain worker
    # The threads pool stops in a fraction of a second, so a restart is quick;
    # `make worker` in production keeps Celery's prefork pool.
    command.append("--pool=threads")
    run_process(
        settings.PROJECT_ROOT / app.main,
        target=shlex.join(command),
        target_type="command",
        watch_filter=PythonFilter(),
        debounce=200,
        sigint_timeout=10,
    )


if __name__ == "__main__":
    main()
