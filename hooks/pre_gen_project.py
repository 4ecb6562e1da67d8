"""Check the answers before anything is written; exit 1 with one line if one is wrong.
Runs on the Python that runs cookiecutter: macOS's own python3 is 3.9."""

import keyword
import pkgutil
import sys
import sysconfig

# Names the generated package would hide from its own imports.
RESERVED = {"celery", "kombu", "redis", "dotenv", "tasks", "amqp", "billiard", "vine",
            "pytest", "tests", "test", "settings", "demo", "celery_devfs", "celery_servers"}


def slug_error(slug):
    if not slug.isidentifier() or not slug.isascii():
        return "is not a valid Python package name; use lowercase letters, digits and _"
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        return "is a Python keyword; pick another name"
    if slug in RESERVED or slug in stdlib_module_names():
        return "would hide a module the project imports; pick another name"
    if slug != slug.lower():
        return "must be lowercase"
    return None


def stdlib_module_names():
    """sys.stdlib_module_names, which Python 3.9 lacks: there, what its stdlib holds."""
    if hasattr(sys, "stdlib_module_names"):
        return sys.stdlib_module_names
    found = pkgutil.iter_modules([sysconfig.get_paths()["stdlib"]])
    return {module.name for module in found} | set(sys.builtin_module_names)


if __name__ == "__main__":
    slug = {{ cookiecutter.project_slug | tojson }}
    error = slug_error(slug)
    if error:
        sys.exit(f"ERROR: project_slug {slug!r} {error}, e.g. 'my_celery_project'.")
