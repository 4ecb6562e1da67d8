"""A project generated from this template takes later template changes with cruft,
as the README says: render at one commit, change the template, update the project."""

import shutil
import subprocess

import pytest

from conftest import BIN, TEMPLATE, run

pytestmark = pytest.mark.slow
GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]


def copy_of_the_template(folder):
    """The template's files (as `git ls-files` lists them, uncommitted edits included)
    in a git repository of their own, committed."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        if (TEMPLATE / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE / name, folder / name)
    run(["git", "init", "--quiet"], folder)
    run(["git", "add", "--all"], folder)
    run([*GIT, "commit", "--quiet", "-m", "the template"], folder)
    return folder


def test_cruft_brings_a_template_change_into_a_generated_project(tmp_path):
    template = copy_of_the_template(tmp_path / "template")
    run([BIN / "cruft", "create", "--no-input", template], tmp_path)
    project = tmp_path / "my_celery_project"
    env_file = (project / ".env").read_text()  # the project's own Flower password
    run(["git", "init", "--quiet"], project)
    run(["git", "add", "--all"], project)
    run([*GIT, "commit", "--quiet", "-m", "generated"], project)
    assert run([BIN / "cruft", "check"], project, check=False).returncode == 0

    makefile = template / "{{cookiecutter.project_slug}}" / "Makefile"
    # A template change: the purge target's help line, whatever it says today, said again.
    text = makefile.read_text()
    old = next(line for line in text.splitlines() if line.startswith("purge:"))
    new = old + " (said again)"
    makefile.write_text(text.replace(old, new))
    run([*GIT, "commit", "--quiet", "-am", "purge: a clearer help line"], template)
    (project / "my_celery_project" / "tasks.py").write_text("# the user's own change\n")
    run([*GIT, "commit", "--quiet", "-am", "my tasks"], project)

    assert run([BIN / "cruft", "check"], project, check=False).returncode != 0
    run([BIN / "cruft", "update", "--skip-apply-ask"], project)
    assert new in (project / "Makefile").read_text()
    assert (project / "my_celery_project" / "tasks.py").read_text() == "# the user's own change\n"
    assert (project / ".env").read_text() == env_file  # kept: [tool.cruft] skip
    assert list(project.rglob("*.rej")) == []
    assert run([BIN / "cruft", "check"], project, check=False).returncode == 0
