"""The data folder: which folders may be one, how it is made and cleaned, and
how files in it are read and written without ever blocking or being half-seen."""

import functools
import os
import re
import shutil
import stat
from pathlib import Path

from . import space

# The subfolders, as kombu's filesystem transport and Celery's file backend name them.
DATA_FOLDERS = ("queue", "control", "processed", "quarantine", "results")
# In every data folder we make: only a folder that has it is ever cleaned.
MARKER = ".celery-data-folder"
MARKER_TEXT = b"Made by celery_devfs, the development broker; `make clean` deletes this folder.\n"
# Files a project may keep in the data folder too (make demo's log, beat's files).
OTHER_FILES = ("*.log", "beat-schedule*", "beat.pid")
# Compared resolved, as the folder asked for is: on macOS /etc, /tmp and /var are
# symlinks into /private.
SYSTEM_FOLDERS = tuple(
    Path(p)
    for p in ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc")
    + ("/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/Users", "/Library")
    + ("/private", "/private/etc", "/private/tmp", "/private/var", "/System", "/Applications")
    + ("/Volumes", "/opt/homebrew", "/usr/local")
)
# The largest message or result read, as RabbitMQ 3.x's default max_message_size:
# a hostile 10 GB file (or /dev/zero) must not fill a worker's memory.
MAX_FILE_BYTES = 128 * 1024 * 1024

# Filesystems on which a write made elsewhere (the Windows side of WSL 2's /mnt/c,
# a Mac host under Docker Desktop, another machine) wakes neither inotify nor a
# doorbell, though both can be set up there: a folder on one is polled.
FOREIGN_FILESYSTEMS = {"9p", "drvfs", "v9fs", "virtiofs", "fakeowner", "fuse.grpcfuse"}
FOREIGN_FILESYSTEMS |= {"cifs", "smb3", "smbfs", "nfs", "nfs4"}
# Of those, what other machines or VMs can share, and run workers on: WSL's /mnt/c
# (9p, drvfs) is shared with Windows only, where celery_devfs does not run.
SHARED_FILESYSTEMS = FOREIGN_FILESYSTEMS - {"9p", "drvfs", "v9fs"}
MOUNTINFO = "/proc/self/mountinfo"


class DataFolderError(ValueError):
    """The folder cannot be a data folder; the message says why."""


class DamagedFile(ValueError):
    """A file in the data folder that cannot be what its name says."""


def not_a_data_folder(path, protect=()):
    """Why `path` must not be a data folder (which a clean deletes), or None."""
    home = Path.home().resolve()
    for kept in [home, *(Path(p).resolve() for p in protect)]:
        if path == kept or path in kept.parents:
            return f"holds {kept}"
        if kept in path.parents and kept != home:
            return f"is inside {kept}"
    if path in {folder.resolve() for folder in SYSTEM_FOLDERS}:  # `path` is resolved
        return "is a system folder"
    if path.exists() and not path.is_dir():
        return "is a file, not a folder"
    if path.is_dir() and not is_ours(path):
        return "already holds files that celery_devfs did not create"
    return None


def checked(data_dir, protect=()):
    """`data_dir` as an absolute path, or DataFolderError when it cannot be ours."""
    path = Path(data_dir).expanduser().resolve()
    why = not_a_data_folder(path, protect)
    if why:
        raise DataFolderError(why)
    return path


def is_ours(folder):
    """Has the marker, or holds only names we make (empty, or made before the marker)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return MARKER in names or all(is_data_name(name) for name in names)


def is_data_name(name):
    return name in (*DATA_FOLDERS, MARKER) or any(Path(name).match(p) for p in OTHER_FILES)


def make_data_folders(data_dir, protect=()):
    """Check, create (0700, marked) and return {name: path} of the data folders.
    chmod too: mkdir's mode gives way to the umask, and parents get none."""
    path = checked(data_dir, protect)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
        if not (path / MARKER).exists():
            write_private_file(path / MARKER, MARKER_TEXT, path / f".{MARKER}.tmp")
        for name in DATA_FOLDERS:
            (path / name).mkdir(mode=0o700, exist_ok=True)
            (path / name).chmod(0o700)
    except OSError as exc:
        raise DataFolderError(f"cannot be used ({exc.strerror})") from None
    return {name: path / name for name in DATA_FOLDERS}


def make_folder(folder):
    """mkdir -p, owner-only; DataFolderError when it cannot be made (a file in its path)."""
    try:
        Path(folder).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFolderError(f"{folder} cannot be used ({exc.strerror})") from None


def remove_data_folder(data_dir, protect=()):
    """Delete what celery_devfs and the project wrote there, then the folder once
    empty. Returns the other names found (kept, with the marker: still ours). Whether
    a process still uses it is asked first, by queues.remove_data_folders."""
    path = checked(data_dir, protect)
    if not path.is_dir():
        return []
    for _ in range(3):  # a file written meanwhile (a late producer): once more
        try:
            return _remove(path)
        except OSError as exc:
            error = exc
    raise DataFolderError(f"could not be emptied ({error.strerror}); try again") from None


def _remove(path):
    kept = []
    for entry in os.scandir(path):
        if not is_data_name(entry.name):
            kept.append(entry.name)
        elif entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        elif entry.name != MARKER:
            os.remove(entry.path)
    if not kept:
        (path / MARKER).unlink(missing_ok=True)
        path.rmdir()
    return sorted(kept)


def read_regular_file(path, limit=MAX_FILE_BYTES):
    """The bytes of a regular file. A FIFO, a device, a symlink or a folder raises
    DamagedFile without being opened for reading, so nothing can block."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise DamagedFile(f"not a regular file (mode {stat.filemode(mode)})")
        # Should it become a symlink or a FIFO after the lstat: no follow, no block.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DamagedFile(f"unreadable ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DamagedFile(f"not a regular file (mode {stat.filemode(info.st_mode)})")
        if info.st_size > limit:
            raise DamagedFile(f"{info.st_size} bytes, over the {limit} a file may have")
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(limit + 1)
    except OSError as exc:
        raise DamagedFile(f"unreadable ({exc.strerror})") from exc
    finally:
        os.close(fd)


def write_private_file(path, data, temporary):
    """Write `data` to `temporary` (0600), then rename it to `path`: readers see the
    whole file or nothing. On failure (a full disk) the temporary file is removed;
    for a running task, a full disk is waited out (space.py)."""
    space.write(lambda: _write_private_file(path, data, temporary), os.fsdecode(path))


def _write_private_file(path, data, temporary):
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


@functools.lru_cache(maxsize=64)  # one read per folder and process
def filesystem(folder, mountinfo=None):
    """The type of the filesystem that holds `folder` ("ext4", "9p"...), or None where
    the system does not say (no /proc: macOS, the BSDs)."""
    path, best, found = os.path.realpath(os.fsdecode(folder)), "", None
    try:
        with open(mountinfo or MOUNTINFO, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields = line.split()  # ... mount point (5th) ... - type source options
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best) and "-" in fields:
                    best, found = point, fields[fields.index("-") + 1]
    except (OSError, IndexError):
        return None
    return found


def foreign(folder):
    """Is `folder` on a filesystem whose writes from elsewhere wake nothing here?"""
    return filesystem(folder) in FOREIGN_FILESYSTEMS
