"""`make check`: the environment, where messages and results go, and whether they answer."""

import sys

from . import app, servers, settings


def folder_size(folder):
    """How many files a folder holds, and their bytes (files may vanish as we count)."""
    files = size = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                files, size = files + 1, size + path.stat().st_size
        except FileNotFoundError:
            pass
    return files, size


def main():
    env = settings.read_environment()
    print(f"environment: {env.get('CELERY_ENV') or 'development'}")
    found = servers.servers(app)
    for name, url, why in found:
        print(f"{name + ':':9}{url} " + (f"unreachable ({why}); {servers.FIX}" if why else "ok"))
    if settings.uses_files(app.conf):
        files, size = folder_size(settings.data_dir(env))
        print(f"{'data:':9}{settings.data_dir(env)} ({files} files, {size / 1024:.1f} KiB)")
    sys.exit(1 if any(why for _, _, why in found) else 0)


if __name__ == "__main__":
    main()
