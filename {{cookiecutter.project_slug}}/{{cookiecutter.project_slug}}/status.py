"""`make status`: which workers answer, and what each is running right now."""

import sys

from . import app as default_app

TIMEOUT = 1.0  # seconds to wait for replies


def main(app=default_app):
    inspect = app.control.inspect(timeout=TIMEOUT)
    replies = inspect.ping()
    if not replies:
        sys.exit(f"No worker answered within {TIMEOUT:g} s; start one with `make worker`.")
    active = inspect.active() or {}
    for name in sorted(replies):
        tasks = active.get(name, [])
        print(f"{name}: up, {len(tasks)} task(s) running")
        for task in tasks:
            print(f"    {task['name']}[{task['id']}] args={task['args']}")


if __name__ == "__main__":
    main()
