"""`make check`: the environment, where messages and results go, and whether they answer."""

import sys

from . import app, servers, settings


def main():
    env = settings.read_environment()
    print(f"environment: {env.get('CELERY_ENV') or 'development'}")
    found = servers.servers(app)
    for name, url, why in found:
        print(f"{name + ':':9}{url} " + (f"unreachable ({why}); {servers.FIX}" if why else "ok"))
    if settings.uses_files(app.conf):
        print(f"{'data:':9}{settings.data_dir(env)}")
    sys.exit(1 if any(why for _, _, why in found) else 0)


if __name__ == "__main__":
    main()
