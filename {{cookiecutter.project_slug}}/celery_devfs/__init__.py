"""celery_devfs: a Celery broker and result backend on plain files, for development.

Use::

    import celery_devfs
    app.conf.update(celery_devfs.celery_settings("/path/to/data"))

``celery_settings`` checks that the installed Celery and kombu are those
celery_devfs was tested with, or a later minor in which nothing it relies on
has moved, and that the folder can be the broker's own,
creates it (owner-only, marked as ours), registers the ``devfs://`` URL scheme
with kombu and Celery, and returns the settings: ``broker_url``,
``result_backend`` and ``broker_transport_options``. See README.md for what it
guarantees and where it differs from production.
"""

import re
import sys
from importlib.metadata import version

from celery.app.backends import BACKEND_ALIASES
from kombu.transport import TRANSPORT_ALIASES

from .folders import DataFolderError, make_data_folders
from .queues import remove_data_folders

__version__ = "1.1.0"
SCHEME = "devfs"
# The Celery and kombu minor versions celery_devfs is tested with: it implements
# their extension points, some private (internals.py lists them).
SUPPORTED = {"celery": (5, 7), "kombu": (5, 7)}

__all__ = [
    "DataFolderError",
    "PlatformError",
    "VersionError",
    "celery_settings",
    "register",
    "remove_data_folders",
]


class VersionError(RuntimeError):
    """The installed Celery or kombu is not one celery_devfs was tested with."""


class PlatformError(RuntimeError):
    """celery_devfs does not run on this system (Windows itself); the message says so."""


def check_platform(platform=None):
    """Raise PlatformError on Windows: its select() waits on sockets only, not on the
    pipes and files celery_devfs waits on, and it has no fork, FIFO or flock."""
    if (platform or sys.platform) == "win32":
        raise PlatformError(
            "the development broker (celery_devfs) runs on Linux, macOS, the BSDs and "
            "WSL 2, not on Windows itself: open the project in WSL 2"
        )


def check_versions(installed=None, moved=None):
    """Raise VersionError, saying what moved and what to do, when development cannot run
    on the installed Celery and kombu: a major version other than the tested one, or a
    minor in which a private name celery_devfs uses has moved (internals.moved()). A
    minor that moved none of them is taken: its first day is not the project's last.
    installed(name): a package's version (importlib.metadata's); moved(): a list."""
    found = {name: (installed or version)(name) for name in SUPPORTED}
    numbers = {name: tuple(int(n) for n in re.findall(r"\d+", v)[:2]) for name, v in found.items()}
    untested = {name: v for name, v in found.items() if numbers[name] != SUPPORTED[name]}
    if not untested:
        return
    if any(numbers[name][0] != SUPPORTED[name][0] for name in untested):
        what = "a major version celery_devfs does not know"
    else:
        if moved is None:
            from .internals import moved
        changes = moved()
        if not changes:
            return
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        what = f"in which {changes[0]}{more}"
    tested = " and ".join(f"{n} {'.'.join(map(str, v))}.x" for n, v in SUPPORTED.items())
    have = ", ".join(f"{name} {v}" for name, v in untested.items())
    raise VersionError(
        f"celery_devfs {__version__} (the development broker) is tested with {tested}, "
        f"and {have} is installed, {what}: take a newer celery_devfs (cruft update), or "
        f"install {tested} for development; production does not use celery_devfs"
    )


def register():
    """Make ``devfs://`` known to kombu (the broker) and Celery (the result backend)."""
    from celery import signals
    from celery.worker.consumer.mingle import Mingle

    from .backend import expire_results

    TRANSPORT_ALIASES[SCHEME] = f"{__name__}.transport:Transport"
    BACKEND_ALIASES[SCHEME] = f"{__name__}.backend:Backend"
    # Revokes reach a starting worker as on RabbitMQ and Redis: Celery's Mingle
    # bootstep asks the workers that are up for the revokes they hold. Celery runs
    # it on the transports it knows; ours has what it takes (broadcasts with replies).
    Mingle.compatible_transports = {*Mingle.compatible_transports, SCHEME}
    # Results expire without beat, as Redis keys do: workers delete them (backend.py).
    signals.worker_ready.connect(expire_results, weak=False, dispatch_uid=__name__)


def celery_settings(data_dir, protect=()):
    """Celery settings for a broker and result backend in ``data_dir``.

    ``protect``: folders the data folder must neither hold nor be inside (the
    code of the project using it), besides the home folder and system folders.
    Raises PlatformError, VersionError or DataFolderError, with a message that says
    why and what to do.
    """
    check_platform()
    check_versions()
    folders = make_data_folders(data_dir, protect)
    register()
    return {
        "broker_url": f"{SCHEME}://",
        "result_backend": f"{SCHEME}://{folders['results'].as_posix()}",
        "broker_transport_options": {
            # One folder both ways: kombu's filesystem transport has two.
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
            "quarantine_folder": str(folders["quarantine"]),
            "store_processed": False,
        },
    }
