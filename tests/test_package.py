"""The package's layout keeps its promises: one name one meaning, no private imports across
modules, the short names of the flat layout still import, every docstring example runs."""
from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import course_utils

PKG = Path(course_utils.__file__).parent
# Modules whose examples need a model, a server or a notebook kernel: their docstrings mark such
# lines `# doctest: +SKIP`, so only modules that fail to import without extras are left out here.
OPTIONAL: set[str] = set()


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PKG)], prefix="course_utils."):
        if not any(info.name == o or info.name.startswith(o + ".") for o in OPTIONAL):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def _source_files():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_top_level_is_small_and_follows_the_flow():
    entries = [p.name for p in PKG.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 23, sorted(entries)
    for name in course_utils.SUBPACKAGES:
        assert (PKG / name).is_dir() or (PKG / f"{name}.py").exists(), name


@pytest.mark.parametrize("alias", sorted(course_utils.ALIASES))
def test_short_names_still_import(alias):
    module = getattr(course_utils, alias)
    assert module.__name__ == f"course_utils.{course_utils.ALIASES[alias]}"


def test_hits_and_runs_have_public_homes():
    from course_utils.runs import check_run, to_run, trec_order  # noqa: F401
    from course_utils.search import Hits
    assert Hits.__module__ == "course_utils.search.hits"


def _private_imports(path: Path) -> list[str]:
    tree, found = ast.parse(path.read_text()), []
    here = _module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_utils"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and node.module != here:
                    found.append(f"{here}: from {node.module} import {alias.name}")
    return found


def test_no_module_imports_a_private_name_from_another():
    bad = [line for path in _source_files() for line in _private_imports(path)]
    assert bad == [], "make these names public in the module that owns them:\n" + "\n".join(bad)


def test_no_private_modules_are_imported_across_subpackages():
    bad = []
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_utils"):
                if any(part.startswith("_") and part != "__init__" for part in node.module.split(".")):
                    bad.append(f"{_module_name(path)}: {node.module}")
    assert bad == []


def _definitions() -> dict[str, list[tuple[str, str]]]:
    """public name -> [(module, signature)] for every function/class *defined* in a module."""
    out = defaultdict(list)
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            if getattr(value, "__module__", None) != name:
                continue  # imported from elsewhere: the same object, not a second meaning
            try:
                sig = str(inspect.signature(value))
            except (TypeError, ValueError):
                sig = "?"
            out[attr].append((name, sig))
    return out


# Names that several modules define on purpose, each the same idea in its own setting.
SAME_IDEA = {"main", "create_app", "Settings"}


def test_one_public_name_one_meaning():
    clashes = {name: defs for name, defs in _definitions().items()
               if len(defs) > 1 and len({sig for _, sig in defs}) > 1 and name not in SAME_IDEA}
    assert clashes == {}, "one name, one meaning — rename one of each:\n" + "\n".join(
        f"{n}: {d}" for n, d in sorted(clashes.items()))


@pytest.mark.parametrize("name", [m for m in MODULES if not m.endswith("__main__")])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("name", [m for m in MODULES if not m.endswith("__main__")])
def test_public_modules_declare_all(name):
    module = importlib.import_module(name)
    if name.rsplit(".", 1)[-1].startswith("_") or not inspect.getsource(module).strip():
        pytest.skip("private or empty")
    public = [a for a, v in vars(module).items() if not a.startswith("_")
              and (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == name]
    if public:
        assert hasattr(module, "__all__"), f"{name} defines {public[:3]}… but no __all__"
        missing = sorted(set(public) - set(module.__all__))
        assert not missing, missing
