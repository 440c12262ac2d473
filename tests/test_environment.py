"""The conda environment.yml and the package pin the same versions; the CI script calls make test."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_pins_equal_pyproject():
    project = _pyproject()["project"]
    ours = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == ours, f"only in environment.yml: {set(pip) - ours}; only in pyproject: {ours - set(pip)}"


def test_no_deps_packages_listed_in_both():
    nodeps = _pyproject()["tool"]["course-utils"]["no-deps"]
    comment = re.search(r"^# no-deps: (.*)$", (ROOT / "environment.yml").read_text(), re.M)
    assert comment and comment.group(1).split() == nodeps


def test_every_pin_is_exact_and_torch_is_cpu_pinned():
    project = _pyproject()["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert "==" in req, f"{req} is not pinned exactly"
    assert "torch==2.13.0" in project["dependencies"]


def test_ci_runs_the_readme_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make course" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_jupyterlab_never_asks_to_fetch_news():
    """`make setup` turns JupyterLab's news and update checks off (the course runs offline)."""
    import json
    import sys

    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    notification = json.loads(settings.read_text())["@jupyterlab/apputils-extension:notification"]
    assert notification == {"checkForUpdates": False, "fetchNews": "false"}


def test_ipywidgets_installed_so_tqdm_auto_draws_bars():
    import ipywidgets  # noqa: F401  (without it tqdm.auto warns in every chapter)
