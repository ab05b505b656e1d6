"""Where a running ``minicc serve`` can be reached, for the commands that work beside it.

``minicc serve`` writes ``<data_dir>/server.json`` once it listens (its pid and HTTP
address) and removes it when it stops. A management command that must know what the server
is doing right now (``minicc tenant delete`` refuses while the tenant has live calls) reads
it and asks the server's loopback-only ``/api/status``. A file left by a server that died
is recognised by its pid and ignored.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RuntimeInfo", "clear", "live_status", "read", "write"]

RUN_FILE = "server.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeInfo:
    pid: int
    http: str
    """Base URL a local client reaches the API at, e.g. ``http://127.0.0.1:8080``."""


def write(data_dir: Path, *, pid: int, bind: str, http_port: int) -> None:
    host = "127.0.0.1" if bind in ("0.0.0.0", "") else ("[::1]" if bind == "::" else bind)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    path = data_dir / RUN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "http": f"http://{host}:{http_port}"}))
    tmp.replace(path)


def clear(data_dir: Path, pid: int) -> None:
    current = read(data_dir, check_alive=False)
    if current is not None and current.pid == pid:
        (data_dir / RUN_FILE).unlink(missing_ok=True)


def read(data_dir: Path, *, check_alive: bool = True) -> RuntimeInfo | None:
    try:
        raw = json.loads((data_dir / RUN_FILE).read_text())
        info = RuntimeInfo(pid=int(raw["pid"]), http=str(raw["http"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not _alive(info.pid):
        return None
    return info


def live_status(data_dir: Path, timeout: float = 3.0) -> dict[str, Any] | None:
    """The running server's ``/api/status``, or None when no server runs on this data dir.

    Raises:
        OSError: a server runs (its pid is alive) but does not answer.
    """
    info = read(data_dir)
    if info is None:
        return None
    try:
        with urllib.request.urlopen(f"{info.http}/api/status", timeout=timeout) as reply:
            status: dict[str, Any] = json.loads(reply.read())
    except (urllib.error.URLError, ValueError) as exc:
        raise OSError(f"the server (pid {info.pid}) at {info.http} does not answer: {exc}") from exc
    return status


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
