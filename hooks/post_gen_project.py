"""Finish the new project: its .env, its data folders, and what to type next.

Runs inside the new project folder. It uses the standard library only, since
cookiecutter may run from an environment that has nothing else.
"""

import os
import shutil
from pathlib import Path

# The same as in celery_devfs/folders.py (a template test keeps them equal).
DATA_FOLDERS = ("queue", "control", "processed", "quarantine", "results")
MARKER = ".celery-data-folder"
MARKER_TEXT = b"Made by celery_devfs, the development broker; `make clean` deletes this folder.\n"

project = Path.cwd()
env_file = project / ".env"
if not env_file.exists():
    shutil.copyfile(project / ".env.example", env_file)
    env_file.chmod(0o600)  # it holds the broker's password and Flower's login
# Owner only: task arguments and results may hold private data.
data = project / ".celery"
data.mkdir(mode=0o700, exist_ok=True)
data.chmod(0o700)
for name in DATA_FOLDERS:
    (data / name).mkdir(mode=0o700, exist_ok=True)
    (data / name).chmod(0o700)
# The mark of a data folder the project made: only such a folder is cleaned.
fd = os.open(data / MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "wb") as marker:
    marker.write(MARKER_TEXT)

print(f"""
Created {project}
Next steps:
    cd {project.name}
    make demo     # runs the sample chord on plain files and prints 10
    make help     # every other target
""")
