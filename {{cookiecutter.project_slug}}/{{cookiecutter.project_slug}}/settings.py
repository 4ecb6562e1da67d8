"""Every setting of the project, in one place, read from the environment; `.env`
fills in what the environment does not set. CELERY_ENV picks development (plain
files under CELERY_DATA_DIR, through celery_devfs) or production (RabbitMQ at
CELERY_BROKER_URL, Redis at CELERY_RESULT_BACKEND). The names are Celery's own:
https://docs.celeryq.dev/en/stable/userguide/configuration.html
"""

import functools
import io
import os
from pathlib import Path

import celery_devfs
from celery_servers import url_problem
from dotenv import dotenv_values
from dotenv.parser import parse_stream

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CODE = [Path(__file__).resolve().parent]  # the data folder must not hold it or be in it


class RunawayLimits:
    """Time limits for the tasks that set none of their own (a Celery annotation).
    Not task_soft_time_limit and task_time_limit: those also fill in the limit a task
    leaves out, and @shared_task(time_limit=2) would fail at .delay() (soft over hard)."""

    def __init__(self, soft, hard):
        self.limits = {"soft_time_limit": soft, "time_limit": hard}

    def annotate(self, task):
        if task.soft_time_limit is None and task.time_limit is None:
            return self.limits
        return None


class SettingsError(SystemExit):
    """A wrong setting: one line and exit status 1, with no traceback from Celery's CLI."""

    def __init__(self, message):
        super().__init__(f"ERROR: {message}")


def read_environment(environ=None, dotenv_file=PROJECT_ROOT / ".env"):
    """The environment, with `.env` filling the gaps (the real environment wins)."""
    values = dict(read_dotenv(dotenv_file))  # a copy: the file is read once per process
    values.update(os.environ if environ is None else environ)
    return {key: value for key, value in values.items() if value is not None}


@functools.cache
def read_dotenv(dotenv_file):
    """The values of a .env file; a line that is not NAME=value is an error."""
    if not Path(dotenv_file).exists():
        return {}
    try:
        text = Path(dotenv_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{dotenv_file} cannot be read ({exc}); fix or delete it") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise SettingsError(
                f"{dotenv_file} line {binding.original.line} is not NAME=value; "
                "fix it, or start it with # to make it a comment"
            )
    return dotenv_values(stream=io.StringIO(text))


def data_dir(env):
    """CELERY_DATA_DIR as an absolute path: a relative one starts at the project root."""
    return (PROJECT_ROOT / Path(env.get("CELERY_DATA_DIR") or ".celery").expanduser()).resolve()


def load(environ=None):
    """The Celery configuration for the environment named by CELERY_ENV."""
    env = read_environment(environ)
    name = env.get("CELERY_ENV") or "development"
    if name not in ENVIRONMENTS:
        raise SettingsError(
            f"CELERY_ENV={name!r} is not a known environment; "
            f"set CELERY_ENV to one of {', '.join(ENVIRONMENTS)} in .env"
        )
    return {**common(env), **ENVIRONMENTS[name](env)}


def common(env):
    """Settings of both environments."""
    return {
        # JSON only: pickle would let anyone who can write a message run code.
        "accept_content": ["json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "timezone": "UTC",
        "enable_utc": True,
        # Keep retrying the broker at start-up too (Celery 6 stops assuming it).
        "broker_connection_retry_on_startup": True,
        # Report STARTED, so a long task does not look PENDING while it runs.
        "task_track_started": True,
        # Name the queue after the project, so that projects sharing one RabbitMQ
        # never take each other's tasks.
        "task_default_queue": env.get("CELERY_QUEUE") or __package__,
        # Acknowledge a task once it has run, one message at a time: a worker
        # that dies mid-task leaves it to another (tasks must be safe to run
        # twice), and a long task holds no others back in a prefetch buffer.
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        # A task still running when the broker connection is lost is delivered
        # again; cancel the first run rather than run it twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Stop runaway tasks: SoftTimeLimitExceeded after 5 minutes, killed after 6.
        "task_annotations": [RunawayLimits(soft=300, hard=360)],
        # Periodic tasks, run by `make beat`. An example, to change or delete.
        "beat_schedule": {
            "example-tsum-every-minute": {
                "task": f"{__package__}.tasks.tsum",
                "schedule": 60.0,
                "args": ([1, 2],),
            },
        },
        # Results are read once; drop them after a day (Redis keys expire, beat's
        # celery.backend_cleanup removes result files).
        "result_expires": 24 * 3600,
        # A worker that waits for a lost broker 2 s at a time, and a second worker of
        # a running one's name that stops with one line (celery_servers.py).
        "worker_consumer": "celery_servers:Consumer",
    }


def development(env):
    """Plain files under CELERY_DATA_DIR: celery_devfs's broker and result backend."""
    try:
        return celery_devfs.celery_settings(data_dir(env), protect=CODE)
    except celery_devfs.DataFolderError as exc:
        raise SettingsError(
            f"CELERY_DATA_DIR={env.get('CELERY_DATA_DIR') or '.celery'!r} ({data_dir(env)}) "
            f"{exc}; point it to a new folder of its own, e.g. CELERY_DATA_DIR=.celery"
        ) from None
    except celery_devfs.PlatformError as exc:
        raise SettingsError(f"{exc}, or set CELERY_ENV=production in .env") from None
    except celery_devfs.VersionError as exc:
        raise SettingsError(str(exc)) from None


def production(env):
    """RabbitMQ as the broker, Redis as the result backend, from the environment."""
    for variable in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        if not env.get(variable):
            raise SettingsError(
                f"CELERY_ENV=production needs {variable}; set it in .env "
                "(see .env.example) or set CELERY_ENV=development"
            )
        if wrong := url_problem(variable, env[variable]):  # Celery: a traceback
            raise SettingsError(wrong)
    return {
        "broker_url": env["CELERY_BROKER_URL"],
        "result_backend": env["CELERY_RESULT_BACKEND"],
        # A .delay() returns once RabbitMQ has the message (publisher confirms); while
        # it is down, .delay() raises kombu.exceptions.OperationalError after 3 tries.
        "broker_transport_options": {"confirm_publish": True},
        # Countdowns and ETAs wait in RabbitMQ, not in a worker (RabbitMQ's consumer
        # timeout, 30 min, would stop it): Celery's native delayed delivery, which needs
        # quorum queues on topic exchanges. What else they change (priorities): DEPLOY.md.
        "task_default_queue_type": "quorum",
        "task_default_exchange_type": "topic",
        "task_create_missing_queue_type": "quorum",
        "task_create_missing_queue_exchange_type": "topic",
        # Give up on a server that does not answer within seconds, instead of hanging.
        "broker_connection_timeout": 5,
        "redis_socket_connect_timeout": 5,
        "redis_socket_timeout": 30,
        # Ride out a server's restart: the worker tries RabbitMQ every 2 s (Celery: up to
        # 30 s), a result is written again each second for minutes (Celery: 10 tries).
        "broker_connection_max_retries": None,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 300,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": 1000,
    }


ENVIRONMENTS = {"development": development, "production": production}
