"""The layering DESIGN.md and STYLE.md promise, checked on the import graph."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "minicc"

# (package, modules it must never import)
RULES = {
    "switch": ("textual", "minicc.tui", "minicc.api", "fastapi", "uvicorn", "sqlite3"),
    "tenants": ("textual", "minicc.tui", "minicc.switch.switch", "minicc.api"),
    "queue": ("textual", "minicc.tui", "minicc.api", "sqlite3", "minicc.store"),
    "store": ("textual", "minicc.tui", "minicc.switch.switch", "minicc.api", "asyncio"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_packages_keep_to_their_layer() -> None:
    broken = []
    for package, forbidden in RULES.items():
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for name in _imports(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    broken.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not broken, "\n".join(broken)


def test_management_cli_does_not_load_the_server() -> None:
    """`minicc tenant list` and friends stay quick: no FastAPI, no asyncio switch."""
    code = (
        "import sys, minicc.cli\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'minicc.switch.switch') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent
    )
    assert out.stdout.strip() == ""
