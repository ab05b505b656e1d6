"""``minicc token create | list | revoke`` on a data dir, and the token against a live server."""

from __future__ import annotations

import json

import httpx
from click.testing import CliRunner

from minicc.cli import cli
from tests.unit.api.conftest import Live


def run(live: Live, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(live.data_dir)])
    return result.exit_code, result.stdout, result.stderr


async def test_created_token_works_until_revoked(live: Live, client: httpx.AsyncClient) -> None:
    code, out, err = run(
        live, "token", "create", "--tenant", "acme", "--role", "supervisor", "--label", "board"
    )
    assert code == 0, err
    token = out.strip()
    assert token.startswith("mcc_") and "not shown again" in err
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/agents", headers=auth)).status_code == 200

    code, out, _ = run(live, "token", "list", "--tenant", "acme", "--json")
    listed = json.loads(out)
    assert [(t["label"], t["role"], t["revoked_at"]) for t in listed] == [
        ("board", "supervisor", None)
    ]
    assert token not in out  # a listing never shows the token

    code, out, _ = run(live, "token", "revoke", str(listed[0]["id"]), "--tenant", "acme")
    assert code == 0 and "revoked token" in out
    assert (await client.get("/api/agents", headers=auth)).status_code == 401


async def test_bad_input_gets_one_line_naming_the_problem(live: Live) -> None:
    code, _, err = run(
        live, "token", "create", "--tenant", "acme", "--role", "boss", "--label", "x"
    )
    assert code == 2 and "--role" in err and "supervisor" in err
    code, _, err = run(
        live, "token", "create", "--tenant", "nope", "--role", "admin", "--label", "x"
    )
    assert code == 1 and "no tenant named 'nope'" in err
    code, _, err = run(live, "token", "revoke", "99", "--tenant", "acme")
    assert code == 1 and "no token with id 99" in err
    # A token of one tenant cannot be revoked through another.
    code, out, _ = run(
        live, "token", "create", "--tenant", "other", "--role", "admin", "--label", "x", "--json"
    )
    other_id = json.loads(out)["id"]
    code, _, err = run(live, "token", "revoke", str(other_id), "--tenant", "acme")
    assert code == 1 and "of tenant 'acme'" in err
    assert "Traceback" not in err
