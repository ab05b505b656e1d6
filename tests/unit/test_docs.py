"""The documents that are generated or promised stay true to the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_state_diagrams_match_the_transition_tables() -> None:
    spec = importlib.util.spec_from_file_location("make", ROOT / "docs/make_state_diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs/state-diagrams.md").read_text(encoding="utf-8")
    assert committed == module.render(), "run: python docs/make_state_diagrams.py"


def test_readme_opens_with_the_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert "minicc serve" in commands[0]
    assert commands[1] == "bash scripts/test.sh"
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert "scripts/test.sh" in ci


def test_docs_links_resolve() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
