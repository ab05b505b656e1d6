"""minicc.switch.sip stays sans-IO: no sockets, event loops, threads, clocks or databases.

Two checks, as STYLE.md asks: an AST scan of every module's imports (catches a forbidden
import even in a branch that never runs), and a subprocess that imports each module and
looks at sys.modules (catches one pulled in indirectly through another package).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import minicc.switch.sip

PACKAGE_DIR = Path(minicc.switch.sip.__file__).resolve().parent
FORBIDDEN = {"asyncio", "socket", "sqlite3", "threading", "time", "selectors", "ssl"}
MODULES = sorted(
    "minicc.switch.sip" + ("" if p.stem == "__init__" else f".{p.stem}")
    for p in PACKAGE_DIR.glob("*.py")
)


def forbidden_imports(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_the_scan_catches_each_form() -> None:
    sample = (
        "import time\nfrom time import monotonic\nimport asyncio.events\n"
        "from socket import socket as s\nimportlib.import_module('sqlite3')\n"
        "__import__('threading')\nimport timeit\nfrom . import timers\n"
    )
    assert forbidden_imports(sample) == [
        "time",
        "time",
        "asyncio.events",
        "socket",
        "sqlite3",
        "threading",
    ]


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_module_imports_io(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


# At run time the stdlib's logging (which the SIP core uses, STYLE.md §12) brings threading
# and time along; what must never load is an event loop, a socket or a database.
RUNTIME_FORBIDDEN = FORBIDDEN - {"threading", "time"}


def test_importing_the_package_pulls_in_no_io_module() -> None:
    assert "minicc.switch.sip.parser" in MODULES
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(PACKAGE_DIR.parents[2])!r})\n"
        "before = set(sys.modules)\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        f"forbidden = {sorted(RUNTIME_FORBIDDEN)!r}\n"
        "bad = sorted(m for m in forbidden if m in set(sys.modules) - before)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE_DIR.parents[2],
    )
    # Only what the imports added counts: some interpreters preload time or threading.
    assert result.stdout.strip() == "", result.stdout
