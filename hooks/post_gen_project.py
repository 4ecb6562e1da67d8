"""Finish the new project: its .env, its data folders, and what to type next.

Runs inside the new project folder. It uses the standard library only, since
cookiecutter may run from an environment that has nothing else.
"""

import shutil
from pathlib import Path

# The same names as DATA_FOLDERS in settings.py (a template test keeps them equal).
DATA_FOLDERS = ("queue", "control", "processed", "quarantine", "results")

project = Path.cwd()
env_file = project / ".env"
if not env_file.exists():
    shutil.copyfile(project / ".env.example", env_file)
for name in DATA_FOLDERS:
    # Owner only: task arguments and results may hold private data.
    (project / ".celery" / name).mkdir(mode=0o700, parents=True, exist_ok=True)
(project / ".celery").chmod(0o700)

print(f"""
Created {project}
Next steps:
    cd {project.name}
    make demo     # runs the sample chord on plain files and prints 10
    make help     # every other target
""")
