"""Test-wide markers for tests that need an external program, and what to do when it is missing.

A test marked ``@pytest.mark.sipp``, ``baresip``, ``sox`` or ``browser`` needs that Debian tool.
Locally, a missing tool SKIPS the test with a loud reason (and a summary at the end of the run);
under CI (the ``CI`` environment variable set, as ``.ci/run`` has it) a missing tool FAILS the
test: ``scripts/test.sh`` installs the tools, so their absence there is a broken setup, and a
skipped real-client test must never pass for a green run.

Inside a fixture or test, ``require_tool("sox")`` applies the same rule to one program.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# marker -> (programs on PATH, files that must exist). The Debian package is named in the
# message so the fix is obvious.
TOOL_MARKERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sipp": (("sipp",), ("/usr/share/sip-tester/g711a.pcap",)),
    "baresip": (("baresip", "sox"), ("/usr/lib/baresip/modules/ctrl_tcp.so",)),
    "sox": (("sox",), ()),
    "browser": (("chromium",), ()),
}
DEBIAN_PACKAGES: dict[str, str] = {
    "sipp": "sip-tester",
    "baresip": "baresip baresip-core",
    "sox": "sox",
    "chromium": "chromium",
    "/usr/share/sip-tester/g711a.pcap": "sip-tester",
    "/usr/lib/baresip/modules/ctrl_tcp.so": "baresip-core",
}
MARKER_HELP: dict[str, str] = {
    "interop": "drives a real SIP client (sipp, baresip) against a running minicc",
    "sipp": "needs sipp (Debian package sip-tester)",
    "baresip": "needs baresip and sox (Debian packages baresip, baresip-core, sox)",
    "sox": "needs sox (Debian package sox)",
    "browser": "needs Chromium (Debian package chromium) for WebRTC tests",
}

_missing_key = pytest.StashKey[list[str]]()


def in_ci() -> bool:
    """True when running under CI: ``CI`` is set to anything but empty, 0 or false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _what_is_missing(marker: str) -> list[str]:
    programs, files = TOOL_MARKERS[marker]
    missing = [p for p in programs if shutil.which(p) is None]
    missing += [f for f in files if not Path(f).exists()]
    return missing


def _missing_message(marker: str, missing: list[str]) -> str:
    packages = " ".join(sorted({DEBIAN_PACKAGES.get(m, m) for m in missing}))
    return (
        f"REAL-CLIENT TEST NOT RUN: {', '.join(missing)} missing for marker '{marker}' "
        f"(install: apt-get install {packages}; scripts/test.sh does this)"
    )


def _skip_or_fail(message: str) -> None:
    if in_ci():
        pytest.fail(f"{message} [CI is set: a missing tool is a failure]", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> None:
    """Skip (locally) or fail (under CI) the current test if program ``name`` is missing.

    ``name`` is a marker name from ``TOOL_MARKERS`` (checks its programs and files) or any
    program name.
    """
    if name in TOOL_MARKERS:
        missing = _what_is_missing(name)
    else:
        missing = [name] if shutil.which(name) is None else []
    if missing:
        _skip_or_fail(_missing_message(name, missing))


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; registering here keeps `--strict-markers` happy for the
    # markers pyproject does not list yet.
    for name, help_text in MARKER_HELP.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    config.stash[_missing_key] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in TOOL_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        missing = _what_is_missing(marker)
        if missing:
            message = _missing_message(marker, missing)
            item.config.stash[_missing_key].append(f"{item.nodeid}: {message}")
            _skip_or_fail(message)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    missing = config.stash.get(_missing_key, [])
    if not missing:
        return
    verdict = "FAILED (CI)" if in_ci() else "SKIPPED"
    terminalreporter.section(f"real-client tests {verdict}: tools missing", sep="!", red=True)
    for line in missing:
        terminalreporter.line(line, red=True)
    terminalreporter.line(
        "A skipped real-client test is not a pass: run scripts/test.sh, which installs them.",
        red=True,
        bold=True,
    )
