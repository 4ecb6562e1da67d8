"""The day Celery publishes a minor release, a fresh render's `make demo` still prints 10
when nothing celery_devfs relies on has moved, and stops with one line naming what
moved when something has. The release is simulated: the installed celery and kombu
wheels, relabelled 5.8.0, are offered beside the registry."""

import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from importlib.metadata import version

import pytest

from conftest import BIN, run, uv_first

pytestmark = [pytest.mark.slow, pytest.mark.quick]
NEXT = "5.8.0"


def relabelled(package, folder, edit=None):
    """The wheel of the installed `package`, relabelled NEXT, in `folder`; edit(name, text)
    may change a module's source on the way. Returns the new wheel's path."""
    have = version(package)
    download = folder / "download"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{package}=={have}"]
        + ["--only-binary=:all:", "-d", download],
        check=True,
    )
    (source,) = download.glob(f"{package}-{have}-*.whl")
    target = folder / source.name.replace(have, NEXT)
    records = []
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            name = item.filename.replace(f"-{have}.dist-info/", f"-{NEXT}.dist-info/")
            if name.endswith(".dist-info/RECORD"):
                record = name
                continue
            data = old.read(item)
            if name.endswith("dist-info/METADATA"):
                data = data.replace(f"Version: {have}".encode(), f"Version: {NEXT}".encode(), 1)
            if name == f"{package}/__init__.py":
                data = data.replace(f"'{have}'".encode(), f"'{NEXT}'".encode())
            if edit and name.endswith(".py"):
                data = edit(name, data.decode()).encode()
            new.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{name},sha256={digest.decode()},{len(data)}")
        new.writestr(record, "\n".join([*records, f"{record},,", ""]))
    return target


def test_a_new_minor_release_runs_make_demo_or_names_what_moved(cookies, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for package in ("celery", "kombu"):
        relabelled(package, wheels)
    project = cookies.bake(extra_context={"project_name": "Next Release"}).project_path
    # uv, as the README's quick start runs it, with the new wheels beside the registry.
    env = uv_first(UV_FIND_LINKS=str(wheels))
    done = run(["make", "demo"], project, **env)
    code = "import celery, kombu; print(celery.__version__, kombu.__version__)"
    assert run([".venv/bin/python", "-c", code], project).stdout.split() == [NEXT, NEXT]
    assert done.stdout.splitlines()[-1] == "10", done.stdout + done.stderr

    # The next minor moves a hook celery_devfs implements: one line names it.
    def move_size(name, text):
        if name != "kombu/transport/virtual/base.py":
            return text
        return re.sub(r"def _size\(self, queue\)", "def _size(self, queue, timeout=None)", text)

    moved = tmp_path / "moved"
    moved.mkdir()
    wheel = relabelled("kombu", moved, edit=move_size)
    install = [BIN / "uv", "pip", "install", "-q", "--python", ".venv", "--reinstall", "--no-deps"]
    run([*install, wheel], project)
    done = run(["make", "demo"], project, check=False, **env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("make:"), done.stderr
    (line,) = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    assert line.startswith("ERROR: celery_devfs "), done.stderr
    assert f"kombu {NEXT} is installed, in which kombu.transport.virtual.Channel._size " in line
    assert "takes (self, queue, timeout), not (self, queue): take a newer celery_devfs" in line
    assert "Traceback" not in done.stdout + done.stderr
