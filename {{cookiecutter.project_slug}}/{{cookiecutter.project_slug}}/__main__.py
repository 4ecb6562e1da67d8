"""`python -m <package> data-dir` or `env`: what the Makefile asks of the settings."""

import sys

from . import settings

env = settings.read_environment()
answers = {"data-dir": settings.data_dir(env), "env": env.get("CELERY_ENV") or "development"}
print(answers[sys.argv[1]])
