"""The terminal apps stay clients of the API: they never import the switch, the store, the
queue engine or the API server, and the headless parts (client, credentials, formatting) and
``minicc --help`` never load Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TUI = ROOT / "minicc" / "tui"
FORBIDDEN = ("minicc.switch", "minicc.store", "minicc.queue", "minicc.api", "sqlite3")


def test_the_apps_import_no_server_internals() -> None:
    broken = []
    for path in sorted(TUI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    broken.append(f"{path.name} imports {name}")
    assert not broken, "\n".join(broken)


def test_headless_modules_do_not_load_textual() -> None:
    code = (
        "import sys, minicc.cli, minicc.tui.client, minicc.tui.credentials, minicc.tui.format\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
