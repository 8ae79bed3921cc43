"""The public surface: the package root exports exactly the names docs/api.md documents.

Every exported name has a docstring; every exception class in rxgpt's modules is exported
and is an :class:`rxgpt.RxgptError`; the internals are not exported; docs/operators.md
describes exactly the exported operators.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import rxgpt
from rxgpt import _operators

DOCS = Path(__file__).parent.parent / "docs"


def documented(path: Path) -> set[str]:
    """The names in the first column of the tables of ``path``."""
    return set(re.findall(r"^\| `([A-Za-z_][A-Za-z_0-9]*)` \|", path.read_text(), re.M))


def modules() -> list[object]:
    found = []
    for info in pkgutil.walk_packages(rxgpt.__path__, "rxgpt."):
        if info.name.startswith("rxgpt.mock") or info.name == "rxgpt.__main__":
            continue
        found.append(importlib.import_module(info.name))
    return found


def test_the_root_exports_exactly_the_documented_names() -> None:
    assert set(rxgpt.__all__) == documented(DOCS / "api.md")
    assert len(rxgpt.__all__) == len(set(rxgpt.__all__))
    for name in rxgpt.__all__:
        assert hasattr(rxgpt, name), name


def test_internals_are_not_exported() -> None:
    for name in ("DONE", "JSON_BACKEND", "decode_batches", "DeltaStream", "BatchedStream"):
        assert name not in rxgpt.__all__
        assert not hasattr(rxgpt, name), name


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in rxgpt.__all__:
        value = getattr(rxgpt, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), name


def test_every_exception_rxgpt_defines_is_exported_in_the_tree() -> None:
    exported = [getattr(rxgpt, name) for name in rxgpt.__all__]
    for module in modules():
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, BaseException)):
                continue
            if not value.__module__.startswith("rxgpt") or name.startswith("_"):
                continue
            if name == "ShapeError":  # internal: caught inside the delta stage, never raised
                continue
            assert any(value is e for e in exported), f"{module.__name__}.{name} is not exported"
            assert issubclass(value, rxgpt.RxgptError), name


def test_the_error_tree_in_the_docs_names_every_error() -> None:
    errors = {
        name
        for name in rxgpt.__all__
        if inspect.isclass(getattr(rxgpt, name)) and issubclass(getattr(rxgpt, name), BaseException)
    }
    tree = (DOCS / "api.md").read_text().split("```")[1]
    assert (
        set(re.findall(r"([A-Za-z]+(?:Error|Timeout|Interrupted|Cancelled|Large|Long|Done))", tree))
        == errors
    )


def test_docs_operators_lists_exactly_the_exported_operators() -> None:
    headings = set(re.findall(r"^## `([a-z_]+)\(", (DOCS / "operators.md").read_text(), re.M))
    assert headings == set(_operators.__all__)
    assert set(_operators.__all__) <= set(rxgpt.__all__)


def test_python_dash_m_rxgpt_is_the_command() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "rxgpt", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "chat" in done.stdout and "serve" in done.stdout
