"""celery_devfs: a Celery broker and result backend on plain files, for development.

Use::

    import celery_devfs
    app.conf.update(celery_devfs.celery_settings("/path/to/data"))

``celery_settings`` checks that the folder can be the broker's own, creates
it (owner-only, marked as ours), registers the ``devfs://`` URL scheme with
kombu and Celery, and returns the settings: ``broker_url``,
``result_backend`` and ``broker_transport_options``. See README.md for what
it guarantees and what files cannot do.
"""

from celery.app.backends import BACKEND_ALIASES
from kombu.transport import TRANSPORT_ALIASES

from .folders import DataFolderError, make_data_folders, remove_data_folders

__version__ = "1.0.0"
# Tested with these; it subclasses their filesystem transport and file backend.
SUPPORTED = {"celery": ">=5.7,<5.8", "kombu": ">=5.7,<5.8"}
SCHEME = "devfs"

__all__ = ["DataFolderError", "celery_settings", "register", "remove_data_folders"]


def register():
    """Make ``devfs://`` known to kombu (the broker) and Celery (the result backend)."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}.transport:Transport"
    BACKEND_ALIASES[SCHEME] = f"{__name__}.backend:Backend"


def celery_settings(data_dir, protect=()):
    """Celery settings for a broker and result backend in ``data_dir``.

    ``protect``: folders the data folder must neither hold nor be inside (the
    code of the project using it), besides the home folder and system folders.
    Raises DataFolderError, with a message that says why, when the folder is
    not usable.
    """
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
