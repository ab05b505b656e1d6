#!/usr/bin/env bash
# Run the whole minicc test suite on a fresh Debian machine with Python 3.11.
#
#   bash scripts/test.sh [pytest args...]      e.g. bash scripts/test.sh tests/interop -x
#
# 1. Installs the Debian tools the real-client tests drive (when any is missing), as root or
#    through sudo, without prompts.
# 2. Creates (or reuses) the virtualenv .venv in the checkout and installs minicc with its
#    test extras into it.
# 3. Runs pytest with the given arguments. Exits non-zero if tests fail, and also when pytest
#    collected no test at all (its exit code 5): a run that tested nothing is not a pass.
set -euo pipefail

# Debian packages for the real-client tests (chromium for the click-to-call browser tests,
# tmux for the test that runs `minicc agent` in a real terminal).
# One list: add a package here and both the check and the install pick it up.
DEBIAN_PACKAGES=(sip-tester baresip baresip-core sox chromium tmux)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '==> %s\n' "$*" >&2; }

install_debian_packages() {
    local missing=() pkg
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        # "install ok installed" only: a package removed but not purged is still missing.
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "Debian packages present: ${DEBIAN_PACKAGES[*]}"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "missing packages (${missing[*]}) and no apt-get: install them by hand"
        return 1
    fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            # -n: never prompt (there is no stdin in CI); fail instead.
            sudo=(sudo -n)
        else
            say "missing packages (${missing[*]}); not root and no sudo: install them by hand"
            return 1
        fi
    fi
    say "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" </dev/null
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    say "no Python >= 3.11 found (set PYTHON=/path/to/python3.11)"
    return 1
}

setup_venv() {
    local python venv="$ROOT/.venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        python="$(find_python)"
        say "creating virtualenv $venv with $python"
        if ! "$python" -m venv "$venv"; then
            # Debian splits venv support into python3-venv (python3.11-venv).
            say "python -m venv failed: install the python3-venv package"
            return 1
        fi
    fi
    say "installing minicc with test extras (aiortc, playwright: system Chromium, no browser download) into .venv"
    "$venv/bin/python" -m pip install -qq -e "$ROOT[test]" </dev/null
}

install_debian_packages
setup_venv

say "ruff check and ruff format --check"
"$ROOT/.venv/bin/python" -m ruff check --quiet minicc tests benchmarks docs
"$ROOT/.venv/bin/python" -m ruff format --check --quiet minicc tests benchmarks docs

say "running: pytest -q $*"
status=0
"$ROOT/.venv/bin/python" -m pytest -q "$@" </dev/null || status=$?
if [[ $status -eq 5 ]]; then
    say "pytest collected no tests: treating that as a failure"
    exit 1
fi
exit "$status"
