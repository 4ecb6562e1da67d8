"""The hooks: bad names are refused before anything is written; the post-gen hook
leaves a project ready to run."""

import ast
import importlib.util
import re
import stat

import pytest
from cookiecutter.environment import StrictEnvironment

from conftest import BIN, TEMPLATE, run

# What each runner of the template CI's quick layer runs (make test-quick).
pytestmark = pytest.mark.quick


def load_hook(name, tmp_path, slug="my_celery_project"):
    """Render a hook with cookiecutter's own Jinja environment and import it."""
    source = (TEMPLATE / "hooks" / f"{name}.py").read_text()
    rendered = StrictEnvironment().from_string(source).render(cookiecutter={"project_slug": slug})
    path = tmp_path / f"{name}.py"
    path.write_text(rendered)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("slug", ["my_celery_project", "billing", "tasks_2"])
def test_good_slugs_pass(tmp_path, slug):
    assert load_hook("pre_gen_project", tmp_path).slug_error(slug) is None


@pytest.mark.parametrize(
    ("slug", "why"),
    [
        ("3_tasks", "not a valid Python package name"),
        ("my-project", "not a valid Python package name"),
        ("café", "not a valid Python package name"),
        ("", "not a valid Python package name"),
        ("class", "keyword"),
        ("match", "keyword"),
        ("celery", "hide a module"),
        ("kombu", "hide a module"),
        ("redis", "hide a module"),
        ("dotenv", "hide a module"),
        ("tasks", "hide a module"),
        ("json", "hide a module"),
        ("MyProject", "lowercase"),
    ],
)
def test_bad_slugs_are_explained(tmp_path, slug, why):
    assert why in load_hook("pre_gen_project", tmp_path).slug_error(slug)


@pytest.mark.parametrize("slug", ["class", "celery", "3_tasks", "my project"])
def test_a_bad_slug_stops_the_render_with_one_line_and_leaves_nothing(tmp_path, slug):
    output = tmp_path / "out"
    done = run(
        [BIN / "cookiecutter", "--no-input", "-o", output, TEMPLATE, f"project_slug={slug}"],
        tmp_path,
        check=False,
    )
    assert done.returncode != 0
    assert list(output.iterdir()) == [], "a half-rendered project was left behind"
    why = load_hook("pre_gen_project", tmp_path).slug_error(slug)
    ours = [line for line in done.stderr.splitlines() if line.startswith("ERROR: project_slug")]
    assert ours == [f"ERROR: project_slug {slug!r} {why}, e.g. 'my_celery_project'."]


def test_post_gen_writes_env_and_private_data_folders(baked):
    env, example = (baked / name for name in (".env", ".env.example"))
    login = re.search(r"^FLOWER_BASIC_AUTH=admin:(\S{22})$", env.read_text(), re.M)
    assert login, "no Flower password of its own"  # 16 random bytes, in base64
    assert env.read_text().replace(login.group(1), "change-me") == example.read_text()
    assert stat.S_IMODE((baked / ".env").stat().st_mode) == 0o600  # it holds passwords
    data = baked / ".celery"
    for path in [data, *data.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    gitignore = (baked / ".gitignore").read_text().splitlines()
    assert ".env" in gitignore and ".celery/" in gitignore


def constant(path, name):
    """The value of a module-level constant, read without importing the module."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {path}")


@pytest.mark.parametrize("name", ["DATA_FOLDERS", "MARKER", "MARKER_TEXT"])
def test_post_gen_agrees_with_celery_devfs(name):
    hook = constant(TEMPLATE / "hooks" / "post_gen_project.py", name)
    devfs = TEMPLATE / "{{cookiecutter.project_slug}}" / "celery_devfs" / "folders.py"
    assert hook == constant(devfs, name)


def test_post_gen_makes_the_folders_the_settings_use(baked):
    folders = constant(TEMPLATE / "hooks" / "post_gen_project.py", "DATA_FOLDERS")
    marker = constant(TEMPLATE / "hooks" / "post_gen_project.py", "MARKER")
    assert sorted(p.name for p in (baked / ".celery").iterdir()) == sorted([*folders, marker])
