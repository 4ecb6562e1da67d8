"""macOS's own python3 is 3.9: cookiecutter run with it renders the project (its hooks
use no newer Python), and `make install` with it stops with one line saying which
Python to install, instead of pip's refusal of requires-python."""

import subprocess

import pytest

from conftest import TEMPLATE, other_python, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cookiecutter_on_3_9(tmp_path_factory):
    """cookiecutter installed in a virtualenv of Python 3.9, as `pip3 install --user
    cookiecutter` on a Mac gives."""
    venv = tmp_path_factory.mktemp("py39") / "venv"
    subprocess.run([other_python("3.9"), "-m", "venv", venv], check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "cookiecutter>=2.6"]
    subprocess.run(pip, check=True, timeout=300)
    return venv / "bin"


def test_cookiecutter_on_python_3_9_renders_the_project(cookiecutter_on_3_9, tmp_path):
    command = [cookiecutter_on_3_9 / "cookiecutter", "--no-input", TEMPLATE]
    run([*command, "project_name=Old Mac"], tmp_path)
    assert (tmp_path / "old_mac" / ".celery" / "queue").is_dir()
    done = run([*command, "project_slug=json"], tmp_path, check=False)
    assert done.returncode != 0
    assert "ERROR: project_slug 'json' would hide a module the project imports" in done.stderr
    assert not (tmp_path / "json").exists()


def test_make_install_with_python_3_9_says_which_python_to_install(baked):
    python = other_python("3.9")
    done = run(["make", "install", f"PYTHON={python}"], baked, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (
        f"ERROR: this project needs Python 3.10 or newer, and {python} is "
        f"{python.parent.parent.name}: install Python 3.14 (python.org, Homebrew, or uv "
        "python install 3.14), or make PYTHON=<a newer python>"
    )
    assert len(lines) == 2 and lines[1].startswith("make: ***")
    assert not (baked / ".venv").exists()
