"""Windows itself: what the READMEs promise there is one line, from every development
command, saying to open the project in WSL 2 (celery_devfs cannot wait on files with
Windows' select()). Run for real by the template CI's windows job; here, as Windows:
sys.platform says win32 once Celery, kombu and billiard are imported (they pick their
own Windows code at import, which Linux does not have)."""

import subprocess
import sys

import pytest

from conftest import BIN, clean_env

pytestmark = pytest.mark.windows
LINE = (
    "ERROR: the development broker (celery_devfs) runs on Linux, macOS, the BSDs and WSL 2, "
    "not on Windows itself: open the project in WSL 2, or set CELERY_ENV=production in .env"
)
AS_WINDOWS = """
import runpy, sys
import billiard.context, celery.app.backends, celery.app.base, dotenv, kombu.transport
import kombu.utils.compat, kombu.utils.url
sys.platform = "win32"
sys.argv = ["cli", *sys.argv[1:]]
runpy.run_module("windows_user.cli", run_name="__main__")
"""


@pytest.fixture(scope="module")
def installed(cookies_session, tmp_path_factory):
    """A project rendered and installed (uv pip install -e) in a virtualenv of its own."""
    result = cookies_session.bake(extra_context={"project_name": "Windows User"})
    assert result.exit_code == 0, result.exception
    venv = tmp_path_factory.mktemp("windows") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    install = [BIN / "uv", "pip", "install", "--quiet", "--python", python, "-e"]
    subprocess.run([*install, result.project_path], check=True, timeout=600)
    return result.project_path, python


@pytest.mark.parametrize("command", ["demo", "check"])
def test_development_on_windows_is_one_line_naming_wsl(installed, command):
    project, python = installed
    if sys.platform == "win32":
        args = [python, "-m", "windows_user.cli", command]
    else:
        args = [python, "-c", AS_WINDOWS, command]
    env = clean_env(CELERY_ENV="development")
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr.strip().splitlines()) == (1, [LINE]), done.stderr
    assert done.stdout == ""
