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

import pytest

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


@pytest.mark.parametrize("package", ["rxgpt", "rxgpt.mock"])
def test_the_three_lists_of_public_names_agree(package: str) -> None:
    """``__all__``, the imports type checkers read and ``_MODULES`` name the same things,
    and each name comes from the module that defines it (see rxgpt/__init__.py)."""
    import ast

    root = importlib.import_module(package)
    assert root.__file__ is not None
    tree = ast.parse(Path(root.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    imported = {
        alias.name: "." + node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
        and node.module.startswith("_")
        for alias in node.names
    }  # fmt: skip
    assert imported == root._MODULES
    assert set(root.__all__) == set(imported)
    for name, module in root._MODULES.items():
        value = getattr(importlib.import_module(module, package), name)
        assert getattr(root, name) is value, name
    assert set(root.__all__) <= set(dir(root))
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        root.nope  # noqa: B018


@pytest.mark.parametrize(("package", "name", "module"), [
    ("rxgpt", "Client", "rxgpt._client"),
    ("rxgpt.mock", "MockServer", "rxgpt.mock._runner"),
])  # fmt: skip
def test_importing_a_package_loads_nothing_until_a_name_is_used(
    package: str, name: str, module: str
) -> None:
    import subprocess
    import sys

    code = (
        f"import sys, {package} as root\n"
        "print(sorted(m for m in sys.modules if m.startswith(('rxgpt.', 'aiohttp'))))\n"
        f"root.{name}\n"
        f"print('aiohttp' in sys.modules, {module!r} in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = "['rxgpt.mock']" if package == "rxgpt.mock" else "[]"
    assert done.stdout.splitlines() == [loaded, "True True"]


#: The ``rxgpt`` command as its console script runs it (the entry point of the installed
#: metadata), with a real SIGINT sent the moment aiohttp starts to load: a Ctrl+C while
#: the command starts.
_CTRL_C_WHILE_LOADING = """
import importlib.metadata, os, signal, sys

class _CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "aiohttp":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _CtrlC())
sys.argv = ["rxgpt", "chat", "hi"]
(command,) = importlib.metadata.entry_points(group="console_scripts", name="rxgpt")
sys.exit(command.load()())
"""


def test_a_ctrl_c_while_the_command_starts_exits_130_without_a_traceback() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _CTRL_C_WHILE_LOADING], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (130, "")


#: ``python -m rxgpt.mock`` (the benchmarks' way to start the server), with the same real
#: SIGINT the moment aiohttp starts to load.
_CTRL_C_WHILE_THE_SERVER_LOADS = (
    _CTRL_C_WHILE_LOADING.split("sys.argv")[0]
    + """
import runpy
sys.argv = ["rxgpt.mock", "--port", "0"]
runpy.run_module("rxgpt.mock", run_name="__main__", alter_sys=True)
"""
)


def test_a_ctrl_c_while_python_dash_m_rxgpt_mock_starts_exits_130_without_a_traceback() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _CTRL_C_WHILE_THE_SERVER_LOADS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (130, "")
