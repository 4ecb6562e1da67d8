"""Finish the new project: its .env, its data folders, and what to type next.

Runs inside the new project folder. It uses the standard library only, since
cookiecutter may run from an environment that has nothing else.
"""

import os
import secrets
from pathlib import Path

# The same as in celery_devfs/folders.py (a template test keeps them equal).
DATA_FOLDERS = ("queue", "control", "processed", "quarantine", "results")
MARKER = ".celery-data-folder"
MARKER_TEXT = b"Made by celery_devfs, the development broker; `make clean` deletes this folder.\n"

project = Path.cwd()
env_file = project / ".env"
if not env_file.exists():
    # Flower's login gets a password of its own: make flower refuses the example's.
    example = (project / ".env.example").read_text(encoding="utf-8")
    login = f"FLOWER_BASIC_AUTH=admin:{secrets.token_urlsafe(16)}"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # passwords
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(example.replace("FLOWER_BASIC_AUTH=admin:change-me", login))
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
