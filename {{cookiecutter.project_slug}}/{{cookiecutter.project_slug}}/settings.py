"""Every setting of the project, in one place.

Values come from the environment; `.env` (beside pyproject.toml) fills in what
the environment does not set. CELERY_ENV picks where messages and results go:

- development (the default): plain files under CELERY_DATA_DIR, no server;
- production: the broker at CELERY_BROKER_URL (RabbitMQ) and the result
  backend at CELERY_RESULT_BACKEND (Redis).

Setting names are Celery's own: https://docs.celeryq.dev/en/stable/userguide/configuration.html
"""

import functools
import io
import os
import shutil
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

from celery.app.backends import BACKEND_ALIASES
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from kombu.transport import TRANSPORT_ALIASES
from kombu.utils.url import maybe_sanitize_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent
ENVIRONMENTS = ("development", "production")
# Folders of the development broker and backend, under CELERY_DATA_DIR.
DATA_FOLDERS = ("queue", "control", "processed", "quarantine", "results")
# Written in every data folder the project creates: `make clean` deletes only a
# folder that carries it, and only the names below.
DATA_MARKER = ".celery-data-folder"
MARKER_TEXT = b"Made by this project's development broker; `make clean` deletes this folder.\n"
# Files the project writes in the data folder itself (make demo, make beat).
DATA_FILES = ("demo-worker.log", "beat-schedule*", "beat.pid")
# Never a data folder, even when empty: `make clean` must not come near them.
SYSTEM_FOLDERS = tuple(
    Path(p)
    for p in ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc")
    + ("/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/Users", "/Library")
)
# CELERY_DEV_BROKER: our safe and quick file broker and backend (devbroker.py,
# devbackend.py), or kombu's and Celery's own, unchanged.
DEV_BROKERS = ("devfs", "filesystem")


class SettingsError(SystemExit):
    """A wrong setting: one line on stderr and exit status 1.

    A SystemExit rather than a ValueError, so that `celery -A ...`, `make` and
    `python -m` print this line alone instead of a traceback.
    """

    def __init__(self, message):
        super().__init__(f"ERROR: {message}")


def read_environment(environ=None, dotenv_file=PROJECT_ROOT / ".env"):
    """The environment, with `.env` filling the gaps (the real environment wins)."""
    values = dict(read_dotenv(dotenv_file))  # a copy: the file is read once per process
    values.update(os.environ if environ is None else environ)
    return {key: value for key, value in values.items() if value is not None}


@functools.cache
def read_dotenv(dotenv_file):
    """The values of a .env file (none when it is missing); a line that is not
    NAME=value is an error naming the file and the line, not a warning per read."""
    try:
        text = Path(dotenv_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
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
    """CELERY_DATA_DIR as an absolute path (a relative one starts at the project
    root), once it is sure to be a folder of the project's own."""
    value = env.get("CELERY_DATA_DIR") or ".celery"
    path = (PROJECT_ROOT / Path(value).expanduser()).resolve()
    why = not_a_data_folder(path)
    if why:
        raise SettingsError(
            f"CELERY_DATA_DIR={value!r} ({path}) {why}; "
            "point it to a new folder of its own, e.g. CELERY_DATA_DIR=.celery"
        )
    return path


def not_a_data_folder(path):
    """Why `path` must not be a data folder (that `make clean` deletes), or None."""
    home = Path.home().resolve()
    if path == PROJECT_ROOT or path in PROJECT_ROOT.parents:
        return "holds the project itself"
    if path == PACKAGE_DIR or PACKAGE_DIR in path.parents:
        return "is inside the package's source code"
    if path == home or path in home.parents:
        return "holds your home folder"
    if path in SYSTEM_FOLDERS:
        return "is a system folder"
    if path.exists() and not path.is_dir():
        return "is a file, not a folder"
    if path.is_dir() and not is_ours(path):
        return "already holds files that this project did not create"
    return None


def is_ours(folder):
    """A folder the project made: it has the marker, or holds only names we create
    (an empty folder, or one made before there was a marker)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return DATA_MARKER in names or all(is_data_name(name) for name in names)


def is_data_name(name):
    return (
        name in DATA_FOLDERS
        or name == DATA_MARKER
        or any(Path(name).match(pattern) for pattern in DATA_FILES)
    )


def make_data_folders(env):
    """Create the data folder, marked as ours, and its subfolders, owner-only
    (chmod too: mkdir's mode gives way to the umask, and parents get none)."""
    path = data_dir(env)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
        marker = path / DATA_MARKER
        if not marker.exists():
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(MARKER_TEXT)
        for name in DATA_FOLDERS:
            (path / name).mkdir(mode=0o700, exist_ok=True)
            (path / name).chmod(0o700)
    except OSError as exc:
        raise SettingsError(
            f"CELERY_DATA_DIR={str(path)!r} cannot be used ({exc.strerror}); "
            "point it to a folder you can write to, e.g. CELERY_DATA_DIR=.celery"
        ) from None
    return path


def remove_data_folders(env):
    """`make clean`: delete what the project wrote in the data folder, and the
    folder once empty. Returns the names of anything else found there: those
    are kept, and so is the marker, so that the folder stays ours."""
    path = data_dir(env)  # refuses a folder that is not ours
    if not path.is_dir():
        return []
    kept = []
    for entry in os.scandir(path):
        if not is_data_name(entry.name):
            kept.append(entry.name)
        elif entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        elif entry.name != DATA_MARKER:
            os.remove(entry.path)
    if not kept:
        (path / DATA_MARKER).unlink(missing_ok=True)
        path.rmdir()
    return sorted(kept)


def data_folders(env):
    """Absolute paths of the development broker's and backend's folders."""
    return {name: data_dir(env) / name for name in DATA_FOLDERS}


def load(environ=None):
    """The Celery configuration for the environment named by CELERY_ENV."""
    env = read_environment(environ)
    name = env.get("CELERY_ENV") or "development"
    if name == "development":
        return {**common(env), **development(env)}
    if name == "production":
        return {**common(env), **production(env)}
    raise SettingsError(
        f"CELERY_ENV={name!r} is not a known environment; "
        f"set CELERY_ENV to one of {', '.join(ENVIRONMENTS)} in .env"
    )


# Acknowledge a message once its task has run, one message at a time: a
# worker that dies mid-task leaves the task to another worker, and a long task
# does not hold others back in a prefetch buffer. Tasks must then be safe to run
# twice. Production and the development broker; not kombu's own filesystem
# broker, which polls once a second: one message at a time would crawl there.
LATE_ACKS = {
    "task_acks_late": True,
    "worker_prefetch_multiplier": 1,
    # A task still running when the broker connection is lost is delivered
    # again; cancel the first run rather than run it twice.
    "worker_cancel_long_running_tasks_on_connection_loss": True,
}


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
        # Stop runaway tasks: SoftTimeLimitExceeded is raised in the task after
        # 5 minutes, the process is killed after 6. Override per task with
        # @shared_task(time_limit=..., soft_time_limit=...).
        "task_soft_time_limit": 300,
        "task_time_limit": 360,
        # Periodic tasks, run by `make beat`. An example, to change or delete:
        # it adds 1 and 2 every minute. Nothing runs unless celery beat does.
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
    }


def development(env):
    """Plain files: messages in the queue folder, results in the results folder."""
    broker = env.get("CELERY_DEV_BROKER") or "devfs"
    if broker not in DEV_BROKERS:
        raise SettingsError(
            f"CELERY_DEV_BROKER={broker!r} is not a known broker; "
            f"set it to one of {', '.join(DEV_BROKERS)} in .env"
        )
    make_data_folders(env)
    folders = data_folders(env)
    if broker == "devfs":
        # devbroker.py and devbackend.py; celery.py registers these schemes.
        broker_url = "devfs://"
        result_backend = "devfile://" + folders["results"].as_uri().removeprefix("file://")
        delivery = LATE_ACKS
    else:
        # A hostname keeps kombu from warning "No hostname was supplied" at every connection.
        broker_url = "filesystem://localhost//"
        result_backend = folders["results"].as_uri()
        delivery = {}
    return {
        **delivery,
        "broker_url": broker_url,
        # Absolute paths: kombu's defaults are relative to the current directory,
        # so a worker started elsewhere would silently use other folders.
        "broker_transport_options": {
            # One folder for both directions, or nothing is ever consumed.
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            # Bindings for broadcasts: celery inspect, status, control.
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": False,
            # devfs: where damaged message files go (kombu's own ignores this).
            "quarantine_folder": str(folders["quarantine"]),
        },
        "result_backend": result_backend,
    }


def uses_files(config):
    """True for the development brokers, whose URLs Celery's variables must not override."""
    return config["broker_url"].partition(":")[0] in DEV_BROKERS


def production(env):
    """RabbitMQ as the broker, Redis as the result backend, from the environment."""
    backends = {*BACKEND_ALIASES, *(e.name for e in entry_points(group="celery.result_backends"))}
    known = {"CELERY_BROKER_URL": TRANSPORT_ALIASES, "CELERY_RESULT_BACKEND": backends}
    for variable, schemes in known.items():
        if not env.get(variable):
            raise SettingsError(
                f"CELERY_ENV=production needs {variable}; set it in .env "
                "(see .env.example) or set CELERY_ENV=development"
            )
        # kombu and Celery would print a traceback for an unknown scheme.
        scheme = urlsplit(env[variable]).scheme.partition("+")[0]
        if scheme not in schemes:
            url = maybe_sanitize_url(env[variable]) if "@" in env[variable] else env[variable]
            raise SettingsError(
                f"{variable}={url!r} has an unknown scheme {scheme + '://'!r}; "
                "use amqp://user:password@host:5672// for RabbitMQ or redis://host:6379/0 "
                "for Redis (see .env.example)"
            )
    return {
        "broker_url": env["CELERY_BROKER_URL"],
        "result_backend": env["CELERY_RESULT_BACKEND"],
        **LATE_ACKS,
        # Give up on a server that does not answer within seconds, instead of hanging.
        "broker_connection_timeout": 5,
        "redis_socket_connect_timeout": 5,
        "redis_socket_timeout": 30,
        # Once running, ride out a broker or Redis restart instead of dying.
        "broker_connection_max_retries": None,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 10,
    }
