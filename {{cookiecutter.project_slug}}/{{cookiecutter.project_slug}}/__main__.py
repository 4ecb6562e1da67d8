"""`python -m <package> data-dir|env|clean`: what the Makefile asks of the settings."""

import sys

from . import settings


def clean(env):
    """Delete what the project wrote in the data folder; say what was kept."""
    kept = settings.remove_data_folders(env)
    if kept:
        print(
            f"kept {settings.data_dir(env)}: it also holds {', '.join(sorted(kept))}, "
            "which this project did not create"
        )


def main(command):
    env = settings.read_environment()
    if command == "data-dir":  # created, owner-only, for make beat's files
        print(settings.make_data_folders(env))
    elif command == "env":
        print(env.get("CELERY_ENV") or "development")
    elif command == "clean":
        clean(env)
    else:
        sys.exit(f"usage: python -m {__package__} data-dir|env|clean")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
