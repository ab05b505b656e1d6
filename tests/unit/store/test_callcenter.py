"""The call-center store: round trips, every refusal, setup() and the demo call center."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from minicc.bootstrap import (
    DEMO_CALLCENTER_KEY,
    DEMO_EXTENSIONS,
    DEMO_TENANT,
    ensure_demo,
    ensure_demo_callcenter,
)
from minicc.queue.agents import AgentInput, AgentState, AgentStateChanged
from minicc.queue.ivr_schema import FlowError
from minicc.queue.ivr_validate import load_flow
from minicc.queue.models import (
    EmptyRule,
    Member,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    RecordingPolicy,
    Strategy,
)
from minicc.queue.setup import (
    AgentSetting,
    CallCenterSetup,
    FlowSource,
    PendingCallback,
    Target,
    TargetKind,
)
from minicc.queue.stats import CallAnswered, CallJoined, LiveStats
from minicc.store.callcenter import (
    AgentPresence,
    CallbackStatus,
    CallCenterStore,
    OptionError,
    normalize_number,
    queue_config,
    queue_config_from_json,
    queue_config_to_json,
    stats_to_json,
)
from minicc.store.control import ControlStore
from minicc.store.database import Database, StoreError
from minicc.store.tenant import MIGRATIONS, TenantStore

NOW = 1_700_000_000.0
PROMPTS = {("en", name) for name in ("welcome", "menu", "please_hold", "bye", "sorry")}

MENU_FLOW = """\
[flow]
name = "main"
start = "menu"

[nodes.menu]
type = "menu"
prompts = ["menu"]
options = { "1" = "sales", "2" = "more" }
default = "sales"

[nodes.sales]
type = "queue"
queue = "sales"

[nodes.more]
type = "flow"
flow = "main"
"""


def prompt_exists(language: str, name: str) -> bool:
    return (language, name) in PROMPTS


@pytest.fixture
def tenant_store(tmp_path: Path) -> Iterator[TenantStore]:
    with TenantStore(tmp_path / "acme.db", tenant="acme") as store:
        for extension in ("1001", "1002", "1003"):
            store.add_extension(extension, "secret1", "acme.example")
        yield store


@pytest.fixture
def store(tenant_store: TenantStore) -> CallCenterStore:
    return CallCenterStore(tenant_store, clock=lambda: NOW)


def _field(exc: pytest.ExceptionInfo[OptionError]) -> str:
    return exc.value.field


# -- schema ----------------------------------------------------------------------------------


def test_an_existing_tenant_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Database(path, MIGRATIONS[:1]) as db:
        db.execute_write(
            "INSERT INTO extensions (extension, ha1_md5, ha1_sha256, realm, created_at)"
            " VALUES ('1001', 'x', 'y', 'r', '2024-01-01T00:00:00+00:00')"
        )
        assert db.user_version() == 1
    with TenantStore(path) as tenant_store:
        assert tenant_store.db.user_version() == len(MIGRATIONS) >= 2
        store = CallCenterStore(tenant_store)
        store.add_queue(QueueConfig(name="sales"))
        store.add_member("sales", "1001")
        assert store.list_members()["sales"][0].agent_id == "1001"


def test_integer_callback_ids_become_text_ids(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with Database(path, MIGRATIONS[:2]) as db:
        db.execute_write("INSERT INTO queues (name, config, created_at) VALUES ('q', '{}', 'x')")
        for number in ("111", "222"):
            db.execute_write(
                "INSERT INTO callbacks (queue, number, joined_at, updated_at)"
                " VALUES ('q', ?, 5.0, 5.0)",
                (number,),
            )
    with TenantStore(path) as tenant_store:
        store = CallCenterStore(tenant_store)
        assert [(c.id, c.number) for c in store.pending_callbacks()] == [("1", "111"), ("2", "222")]
        store.update_callback("2", status="done").result()
        assert [c.id for c in store.pending_callbacks()] == ["1"]


# -- queue configuration values --------------------------------------------------------------


def test_queue_config_json_round_trip() -> None:
    config = queue_config(
        "sales",
        strategy="skills",
        ring_timeout=20,
        wrap_up=0,
        max_wait=300,
        max_length=12,
        overflow="queue:support",
        join_empty="no-staffed",
        leave_when_empty=EmptyRule.NO_LOGGED_IN,
        announce_interval=None,
        callback_threshold=120,
        service_level_threshold=30,
        service_level_target=90,
        required_skills={"en": 3},
        widen_after=45,
        recording="on-demand",
        max_misses=None,
    )
    assert config.strategy is Strategy.SKILLS
    assert config.overflow == OverflowTarget(kind=OverflowKind.QUEUE, queue="support")
    assert config.recording is RecordingPolicy.ON_DEMAND
    data = json.loads(json.dumps(queue_config_to_json(config)))
    assert "name" not in data and data["overflow"] == "queue:support"
    assert queue_config_from_json("sales", data) == config
    assert queue_config_from_json("q", {}) == QueueConfig(name="q")
    # A key written by a newer minicc is ignored, not fatal.
    assert queue_config_from_json("q", {"future_knob": 1}) == QueueConfig(name="q")


def test_queue_config_base_keeps_other_fields() -> None:
    base = queue_config("sales", strategy="ring-all", wrap_up=30)
    changed = queue_config("sales", base, wrap_up=5)
    assert changed.strategy is Strategy.RING_ALL and changed.wrap_up == 5


@pytest.mark.parametrize(
    ("options", "field", "text"),
    [
        ({"ring_timeout": -1}, "ring_timeout", "> 0 seconds"),
        ({"wrap_up": float("nan")}, "wrap_up", "finite"),
        ({"strategy": "random"}, "strategy", "not one of ring-all, longest-idle"),
        ({"overflow": "elsewhere"}, "overflow", "queue:NAME, voicemail"),
        ({"overflow": "queue:sales"}, "overflow", "cannot overflow to itself"),
        ({"max_length": 0}, "max_length", "positive integer"),
        ({"service_level_target": 150}, "service_level_target", "0-100"),
        ({"recording": "sometimes"}, "recording", "always, never, on-demand"),
        ({"required_skills": {"en": 11}}, "required_skills", "1-10"),
        ({"colour": "blue"}, "colour", "unknown option"),
    ],
)
def test_queue_config_errors_name_the_field(
    options: dict[str, object], field: str, text: str
) -> None:
    with pytest.raises(OptionError) as exc:
        queue_config("sales", **options)
    assert exc.value.field == field
    assert text in exc.value.reason
    assert isinstance(exc.value, StoreError)


def test_queue_name_is_checked() -> None:
    with pytest.raises(OptionError) as exc:
        queue_config("no spaces")
    assert _field(exc) == "name"


def test_numbers_are_normalized() -> None:
    assert normalize_number(" +49 (30) 123-456.7 ") == "+49301234567"
    assert normalize_number("8000") == "8000"
    for bad in ("", "1", "abc", "+", "12+3", "1" * 21):
        with pytest.raises(OptionError) as exc:
            normalize_number(bad)
        assert _field(exc) == "number"


# -- queues ----------------------------------------------------------------------------------


def test_queue_round_trip(store: CallCenterStore) -> None:
    support = queue_config("support", strategy="ring-all", max_wait=60, overflow="voicemail")
    sales = queue_config("sales", overflow="queue:support", callback_threshold=90)
    store.add_queue(support)
    store.add_queue(sales)
    assert store.get_queue("sales") == sales
    assert store.get_queue("nope") is None
    assert [q.name for q in store.list_queues()] == ["sales", "support"]
    store.update_queue(queue_config("support", support, wrap_up=45))
    updated = store.get_queue("support")
    assert updated is not None and updated.wrap_up == 45 and updated.max_wait == 60


def test_duplicate_and_missing_queues(store: CallCenterStore) -> None:
    store.add_queue(QueueConfig(name="sales"))
    with pytest.raises(StoreError, match="already exists") as exc:
        store.add_queue(QueueConfig(name="sales"))
    assert not isinstance(exc.value, OptionError)
    with pytest.raises(StoreError, match="no queue named 'ghost'"):
        store.update_queue(QueueConfig(name="ghost"))
    with pytest.raises(StoreError, match="no queue named 'ghost'"):
        store.remove_queue("ghost")


def test_overflow_must_exist_and_not_loop(store: CallCenterStore) -> None:
    with pytest.raises(OptionError, match="no queue named 'b'") as exc:
        store.add_queue(queue_config("a", overflow="queue:b"))
    assert _field(exc) == "overflow"
    store.add_queue(queue_config("c"))
    store.add_queue(queue_config("b", overflow="queue:c"))
    store.add_queue(queue_config("a", overflow="queue:b"))
    with pytest.raises(OptionError, match="loop c -> a -> b -> c") as exc:
        store.update_queue(queue_config("c", overflow="queue:a"))
    assert _field(exc) == "overflow"
    assert store.get_queue("c") == queue_config("c")  # unchanged


def test_queue_in_use_cannot_be_removed(store: CallCenterStore) -> None:
    store.add_queue(queue_config("sales"))
    store.add_queue(queue_config("support", overflow="queue:sales"))
    store.add_member("sales", "1001")
    store.load_ivr(MENU_FLOW, prompt_exists=prompt_exists)
    store.add_number("8001", "queue:sales")
    store.add_callback("sales", "+4930111", joined_at=NOW).result()
    with pytest.raises(StoreError) as exc:
        store.remove_queue("sales")
    message = str(exc.value)
    for reason in (
        "number 8001",
        "the overflow of queue support",
        "IVR flow main",
        "1 pending callback",
    ):
        assert reason in message
    assert "point those elsewhere first" in message
    assert store.get_queue("sales") is not None

    store.remove_number("8001")
    store.update_queue(queue_config("support"))
    store.remove_ivr("main")
    (callback,) = store.pending_callbacks()
    store.update_callback(callback.id, status=CallbackStatus.DONE, result="answered").result()
    store.remove_queue("sales")
    assert store.get_queue("sales") is None
    assert "sales" not in store.list_members()  # memberships went with it


# -- members ---------------------------------------------------------------------------------


def test_member_round_trip(store: CallCenterStore) -> None:
    store.add_queue(queue_config("sales"))
    member, created = store.add_member("sales", "1002", skills={"en": 5, "billing": 7})
    assert created and member == Member(agent_id="1002", skills={"en": 5, "billing": 7})
    store.add_member("sales", "1001")
    member, created = store.add_member("sales", "1002", skills={"en": 9}, penalty=2)
    assert not created
    assert store.list_members() == {
        "sales": (
            Member(agent_id="1001"),
            Member(agent_id="1002", skills={"en": 9}, penalty=2),
        )
    }
    store.remove_member("sales", "1001")
    with pytest.raises(StoreError, match="not a member"):
        store.remove_member("sales", "1001")


@pytest.mark.parametrize(
    ("queue", "extension", "skills", "penalty", "field", "text"),
    [
        ("ghost", "1001", {}, 0, "queue", "no queue named 'ghost'"),
        ("sales", "1009", {}, 0, "extension", "minicc user add --tenant acme --extension 1009"),
        ("sales", "1001", {"en": 0}, 0, "skills", "1-10"),
        ("sales", "1001", {"bad skill": 3}, 0, "skills", "skill name"),
        ("sales", "1001", {}, -1, "penalty", ">= 0"),
        ("sales", "", {}, 0, "extension", "non-empty"),
    ],
)
def test_member_errors_name_the_field(
    store: CallCenterStore,
    queue: str,
    extension: str,
    skills: dict[str, int],
    penalty: int,
    field: str,
    text: str,
) -> None:
    store.add_queue(queue_config("sales"))
    with pytest.raises(OptionError) as exc:
        store.add_member(queue, extension, skills=skills, penalty=penalty)
    assert _field(exc) == field
    assert text in exc.value.reason
    assert store.list_members() == {}


# -- numbers ---------------------------------------------------------------------------------


def test_number_round_trip(store: CallCenterStore) -> None:
    store.add_queue(queue_config("sales"))
    store.load_ivr(MENU_FLOW, prompt_exists=prompt_exists)
    assert store.add_number("8000", "ivr:main") is None
    assert store.add_number("+49 30 1234", Target(kind=TargetKind.QUEUE, name="sales")) is None
    assert store.add_number("8100", "ext:1003") is None
    previous = store.add_number("8000", "queue:sales")
    assert previous == Target(kind=TargetKind.IVR, name="main")
    assert store.list_numbers() == {
        "8000": Target(kind=TargetKind.QUEUE, name="sales"),
        "8100": Target(kind=TargetKind.EXTENSION, name="1003"),
        "+49301234": Target(kind=TargetKind.QUEUE, name="sales"),
    }
    store.remove_number("+49-30-1234")
    with pytest.raises(StoreError, match="not routed"):
        store.remove_number("+49301234")


@pytest.mark.parametrize(
    ("number", "target", "field", "text"),
    [
        ("8000", "queue:ghost", "target", "no queue named 'ghost'"),
        ("8000", "ivr:ghost", "target", "minicc ivr load FILE"),
        ("8000", "ext:1009", "target", "no extension 1009"),
        ("8000", "sip:someone", "target", "queue:NAME, ivr:FLOW or ext:EXTENSION"),
        ("8000", "queue:", "target", "queue:NAME"),
        ("80x0", "queue:sales", "number", "2 to 20 digits"),
        ("1001", "queue:sales", "number", "is an extension"),
    ],
)
def test_number_errors_name_the_field(
    store: CallCenterStore, number: str, target: str, field: str, text: str
) -> None:
    store.add_queue(queue_config("sales"))
    with pytest.raises(OptionError) as exc:
        store.add_number(number, target)
    assert _field(exc) == field
    assert text in exc.value.reason
    assert store.list_numbers() == {}


# -- IVR flows -------------------------------------------------------------------------------


def test_load_ivr_from_a_file(store: CallCenterStore, tmp_path: Path) -> None:
    store.add_queue(queue_config("sales"))
    path = tmp_path / "main.toml"
    path.write_text(MENU_FLOW, encoding="utf-8")
    loaded = store.load_ivr(path, prompt_exists=prompt_exists)
    assert loaded.name == "main" and not loaded.replaced
    assert set(loaded.flow.nodes) == {"menu", "sales", "more"}
    again = store.load_ivr(path, prompt_exists=prompt_exists)
    assert again.replaced
    (stored,) = store.list_flows()
    assert stored.name == "main" and stored.origin == "main.toml" and stored.text == MENU_FLOW
    assert stored.loaded_at.timestamp() == NOW


def test_a_flow_named_by_its_file_stores_its_name(store: CallCenterStore, tmp_path: Path) -> None:
    store.add_queue(queue_config("sales"))
    text = MENU_FLOW.replace('name = "main"\n', "").replace('flow = "main"', 'flow = "intro"')
    path = tmp_path / "intro.toml"
    path.write_text(text, encoding="utf-8")
    assert store.load_ivr(path, prompt_exists=prompt_exists).name == "intro"
    assert store.load_ivr(path, "alt", prompt_exists=prompt_exists).name == "alt"
    flows = store.setup().flows
    assert set(flows) == {"alt", "intro"}
    # What the engine will do with the stored text gives the same flow under the same name.
    for name, source in flows.items():
        assert load_flow(source.text, prompt_exists=prompt_exists).name == name


def test_a_bad_flow_keeps_the_previous_one_live(store: CallCenterStore, tmp_path: Path) -> None:
    store.add_queue(queue_config("sales"))
    store.load_ivr(MENU_FLOW, prompt_exists=prompt_exists, filename="main.toml")
    bad = MENU_FLOW.replace('prompts = ["menu"]', 'prompts = ["missing_prompt"]').replace(
        'queue = "sales"', 'queue = "ghost"'
    )
    path = tmp_path / "main.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(FlowError) as exc:
        store.load_ivr(path, prompt_exists=prompt_exists)
    where = {(p.file, p.node, p.field) for p in exc.value.problems}
    assert ("main.toml", "menu", "prompts[0]") in where
    assert ("main.toml", "sales", "queue") in where
    (stored,) = store.list_flows()
    assert stored.text == MENU_FLOW


def test_flow_load_refusals(store: CallCenterStore, tmp_path: Path) -> None:
    store.add_queue(queue_config("sales"))
    with pytest.raises(FlowError) as exc:
        store.load_ivr(MENU_FLOW, "other", prompt_exists=prompt_exists)
    (problem,) = exc.value.problems
    assert problem.field == "name" and "make them agree" in problem.message
    with pytest.raises(OptionError) as opt:
        store.load_ivr(MENU_FLOW, "bad name", prompt_exists=prompt_exists)
    assert _field(opt) == "name"
    with pytest.raises(FlowError, match="cannot read"):
        store.load_ivr(tmp_path / "absent.toml", prompt_exists=prompt_exists)
    with pytest.raises(FlowError, match="ghost"):
        store.load_ivr(MENU_FLOW.replace('flow = "main"', 'flow = "ghost"'), prompt_exists=PROMPTS)
    assert store.list_flows() == []


def test_flows_use_the_tenant_time_zone(store: CallCenterStore) -> None:
    assert store.timezone() == "UTC"
    store.set_timezone("Europe/Berlin")
    store.add_queue(queue_config("sales"))
    loaded = store.load_ivr(MENU_FLOW, prompt_exists=prompt_exists)
    assert loaded.flow.timezone == "Europe/Berlin"
    with pytest.raises(OptionError) as exc:
        store.set_timezone("Europe/Berln")
    assert _field(exc) == "timezone" and "Europe/Berln" in exc.value.reason
    assert store.timezone() == "Europe/Berlin"


def test_flow_in_use_cannot_be_removed(store: CallCenterStore) -> None:
    store.add_queue(queue_config("sales"))
    store.load_ivr(MENU_FLOW, prompt_exists=prompt_exists)
    caller = """\
[flow]
name = "front"
start = "go"

[nodes.go]
type = "flow"
flow = "main"
"""
    store.load_ivr(caller, prompt_exists=prompt_exists)
    store.add_number("8000", "ivr:main")
    with pytest.raises(StoreError, match="used by number 8000, IVR flow front"):
        store.remove_ivr("main")
    store.remove_number("8000")
    store.remove_ivr("front")
    store.remove_ivr("main")  # naming itself does not count
    with pytest.raises(StoreError, match="no IVR flow named 'main'"):
        store.remove_ivr("main")


# -- agents, VIPs, callbacks, dispositions ---------------------------------------------------


def test_agent_states(store: CallCenterStore) -> None:
    store.set_agent_state("1001", AgentPresence.AVAILABLE)
    paused = store.set_agent_state("1002", "paused", " lunch ")
    assert paused == AgentSetting(extension="1002", state="paused", reason="lunch")
    assert store.submit_agent_state("1001", "logged-out").result() == AgentSetting(
        extension="1001", state="logged-out"
    )
    assert store.agent_states() == {
        "1001": AgentSetting(extension="1001", state="logged-out"),
        "1002": paused,
    }
    with pytest.raises(OptionError, match="no extension 1009") as exc:
        store.submit_agent_state("1009", "available").result()
    assert _field(exc) == "extension"


@pytest.mark.parametrize(
    ("state", "reason", "field"),
    [
        ("busy", None, "state"),
        ("available", "lunch", "reason"),
        ("paused", "x" * 65, "reason"),
    ],
)
def test_agent_state_errors(
    store: CallCenterStore, state: str, reason: str | None, field: str
) -> None:
    with pytest.raises(OptionError) as exc:
        store.set_agent_state("1001", state, reason)
    assert _field(exc) == field
    assert store.agent_states() == {}


def test_vips(store: CallCenterStore) -> None:
    assert store.add_vip("+49 30 999", "big client")
    assert not store.add_vip("+4930999", "bigger client")
    assert store.list_vips() == {"+4930999": "bigger client"}
    store.remove_vip("+4930999")
    with pytest.raises(StoreError, match="not on the VIP list"):
        store.remove_vip("+4930999")
    with pytest.raises(OptionError):
        store.add_vip("anonymous")


def test_callbacks(store: CallCenterStore) -> None:
    store.add_queue(queue_config("sales"))
    late = store.add_callback("sales", "+4930222", joined_at=NOW + 5, name="Kim").result()
    early = store.add_callback("sales", "+4930111", joined_at=NOW, priority=1).result()
    assert late == PendingCallback(
        id=late.id, queue="sales", number="+4930222", name="Kim", joined_at=NOW + 5
    )
    assert [c.id for c in store.pending_callbacks()] == [early.id, late.id]
    store.update_callback(early.id, attempts=1, result="busy").result()
    (first, _) = store.pending_callbacks("sales")
    assert first.attempts == 1
    store.update_callback(early.id, status="failed", attempts=3, result="no answer").result()
    assert [c.id for c in store.pending_callbacks()] == [late.id]
    (failed,) = store.list_callbacks(CallbackStatus.FAILED)
    assert failed.result == "no answer" and failed.callback.attempts == 3
    assert failed.updated_at == NOW
    # The engine names its callbacks and stores them again as attempts are made.
    mine = store.add_callback("sales", "+4930444", joined_at=NOW + 9, callback_id="c0ffee").result()
    assert mine.id == "c0ffee"
    again = store.add_callback(
        "sales", "+4930444", joined_at=NOW + 9, callback_id="c0ffee", attempts=2
    )
    again.result()
    assert [(c.id, c.attempts) for c in store.pending_callbacks()][-1] == ("c0ffee", 2)
    with pytest.raises(StoreError, match="no callback with id nope"):
        store.update_callback("nope", attempts=1).result()
    with pytest.raises(OptionError) as exc:
        store.add_callback("ghost", "+4930333", joined_at=NOW).result()
    assert _field(exc) == "queue"
    with pytest.raises(ValueError):
        store.update_callback(early.id, status="maybe")


def test_dispositions(store: CallCenterStore) -> None:
    store.add_disposition("resolved")
    store.add_disposition("callback-needed", "Call back")
    store.add_disposition("resolved", "Solved")
    assert store.list_dispositions() == [("resolved", "Solved"), ("callback-needed", "Call back")]
    store.remove_disposition("resolved")
    with pytest.raises(StoreError):
        store.remove_disposition("resolved")
    with pytest.raises(OptionError):
        store.add_disposition("Not A Code")


def test_claim_once(store: CallCenterStore) -> None:
    assert store.claim_once("x")
    assert not store.claim_once("x")
    store.delete_setting("x")
    assert store.claim_once("x")


# -- statistics ------------------------------------------------------------------------------


def test_stats_snapshot_round_trip(store: CallCenterStore) -> None:
    assert store.latest_stats() is None
    live = LiveStats(period_start=100.0)
    live.add_queue("sales", service_level_threshold=20)
    live.apply(
        AgentStateChanged(
            agent_id="1001",
            at=100.0,
            input=AgentInput.LOGIN,
            old=AgentState.LOGGED_OUT,
            old_reason=None,
            old_since=0.0,
            new=AgentState.AVAILABLE,
            reason=None,
            call_id=None,
            queue=None,
            queues=frozenset({"sales"}),
        )
    )
    live.apply(CallJoined(queue="sales", call_id="c1", at=110.0))
    live.apply(CallAnswered(queue="sales", call_id="c1", at=125.0, agent_id="1001"))
    store.save_stats_snapshot(live.snapshot(130.0), taken_at=NOW).result()
    saved = store.latest_stats()
    assert saved is not None and saved.taken_at == NOW
    sales = saved.data["queues"]["sales"]
    assert sales["offered"] == 1 and sales["answered"] == 1 and sales["asa"] == 15.0
    assert saved.data["period_seconds"] == 30.0
    assert saved.data["agents"]["1001"]["state"] == "available"
    assert json.loads(json.dumps(stats_to_json(live.snapshot(130.0)))) == saved.data
    store.save_stats_snapshot({"queues": {}}).result()
    replaced = store.latest_stats()
    assert replaced is not None and replaced.taken_at == NOW and replaced.data == {"queues": {}}


# -- setup() ---------------------------------------------------------------------------------


def test_setup_has_everything_the_engine_needs(store: CallCenterStore) -> None:
    empty = store.setup()
    assert empty.tenant == "acme" and empty.timezone == "UTC"
    assert not (empty.numbers or empty.queues or empty.flows or empty.callbacks)

    store.set_timezone("America/New_York")
    sales = queue_config("sales", strategy="skills", callback_threshold=60)
    store.add_queue(sales)
    store.add_member("sales", "1002", skills={"en": 4})
    store.add_member("sales", "1001")
    store.load_ivr(MENU_FLOW, prompt_exists=prompt_exists, filename="main.toml")
    store.add_number("8000", "ivr:main")
    store.set_agent_state("1001", "available")
    store.set_agent_state("1002", "paused", "training")
    store.add_vip("+4930999")
    second = store.add_callback("sales", "+4930222", joined_at=NOW + 1).result()
    first = store.add_callback("sales", "+4930111", joined_at=NOW).result()
    done = store.add_callback("sales", "+4930000", joined_at=NOW - 9).result()
    store.update_callback(done.id, status="done").result()
    store.add_disposition("resolved")
    store.add_disposition("escalated")

    setup = store.setup()
    assert setup.timezone == "America/New_York"
    assert setup.numbers == {"8000": Target(kind=TargetKind.IVR, name="main")}
    assert setup.queues == {"sales": sales}
    assert setup.members == {
        "sales": (Member(agent_id="1001"), Member(agent_id="1002", skills={"en": 4}))
    }
    assert setup.flows == {
        "main": FlowSource(name="main", text=MENU_FLOW, origin="main.toml"),
    }
    assert setup.agents == {
        "1001": AgentSetting(extension="1001", state="available"),
        "1002": AgentSetting(extension="1002", state="paused", reason="training"),
    }
    assert setup.vip_numbers == frozenset({"+4930999"})
    assert setup.callbacks == (first, second)
    assert setup.dispositions == ("resolved", "escalated")


def test_setup_skips_a_corrupt_queue_row(store: CallCenterStore) -> None:
    store.add_queue(queue_config("good"))
    store.db.execute_write(
        "INSERT INTO queues (name, config, created_at) VALUES ('bad', ?, 'x')",
        (json.dumps({"ring_timeout": -5}),),
    )
    assert list(store.setup().queues) == ["good"]


def test_references_are_enforced_by_the_schema(store: CallCenterStore) -> None:
    store.add_queue(queue_config("sales"))
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute_write(
            "INSERT INTO queue_members (queue, extension) VALUES ('sales', '1009')"
        )
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute_write("INSERT INTO numbers (number, target) VALUES ('1', 'sip:x')")


# -- the demo call center --------------------------------------------------------------------


def _demo_setup(control: ControlStore) -> CallCenterSetup:
    tenant = control.get_tenant(DEMO_TENANT)
    assert tenant is not None
    with control.open_tenant(tenant) as tenant_store:
        return CallCenterStore(tenant_store).setup()


def test_first_run_creates_the_demo_call_center_once(tmp_path: Path) -> None:
    with ControlStore(tmp_path) as control:
        assert ensure_demo(control, lambda: "password-x") is not None
        setup = _demo_setup(control)
        assert setup.numbers == {"8000": Target(kind=TargetKind.IVR, name="demo_main")}
        assert list(setup.flows) == ["demo_main"]
        assert set(setup.queues) == {"sales", "support"}
        for queue in setup.queues.values():
            assert queue.strategy is Strategy.LONGEST_IDLE
            assert queue.announce_interval == 30 and queue.callback_threshold == 120
        extensions = [ext for ext, _ in DEMO_EXTENSIONS]
        assert setup.members == {
            q: tuple(Member(agent_id=e) for e in extensions) for q in ("sales", "support")
        }
        assert setup.agents == {e: AgentSetting(extension=e, state="available") for e in extensions}
        assert setup.dispositions == ("resolved", "callback-needed", "escalated", "no-answer")
        # The shipped flow reaches both queues: "1 for sales, 2 for support".
        text = setup.flows["demo_main"].text
        assert 'queue = "sales"' in text and 'queue = "support"' in text
        assert ensure_demo(control) is None
        assert not ensure_demo_callcenter(control)
        assert _demo_setup(control) == setup


def test_an_older_demo_tenant_gets_the_call_center_once(tmp_path: Path) -> None:
    with ControlStore(tmp_path) as control:
        # A demo tenant as an earlier minicc made it: tenant and extensions, nothing else.
        tenant = control.add_tenant(DEMO_TENANT, "demo.localhost")
        with control.open_tenant(tenant) as tenant_store:
            for extension, name in DEMO_EXTENSIONS[:2]:
                tenant_store.add_extension(extension, "secret1", tenant.domain, name)
        assert ensure_demo(control) is None
        setup = _demo_setup(control)
        assert set(setup.queues) == {"sales", "support"}
        assert set(setup.agents) == {"1001", "1002"}
        assert list(setup.numbers) == ["8000"]
        # The admin removes what they do not want; a restart does not bring it back.
        with control.open_tenant(tenant) as tenant_store:
            store = CallCenterStore(tenant_store)
            store.add_number("8000", "queue:sales")
            store.remove_ivr("demo_main")
            store.remove_queue("support")
            assert store.get_setting(DEMO_CALLCENTER_KEY) is not None
        assert ensure_demo(control) is None
        setup = _demo_setup(control)
        assert set(setup.queues) == {"sales"} and not setup.flows


def test_no_demo_tenant_no_call_center(tmp_path: Path) -> None:
    with ControlStore(tmp_path) as control:
        control.add_tenant("acme", "acme.example")
        assert ensure_demo(control) is None
        assert not ensure_demo_callcenter(control)


def test_a_failed_demo_call_center_is_retried_and_never_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("minicc.bootstrap.DEMO_FLOW", "not_shipped")
    with ControlStore(tmp_path) as control:
        with caplog.at_level("WARNING", logger="minicc.bootstrap"):
            assert ensure_demo(control) is not None  # the tenant and its logins are there
        assert "cannot set up the demo call center" in caplog.text
        assert "will retry" in caplog.text
        assert not _demo_setup(control).numbers
        monkeypatch.setattr("minicc.bootstrap.DEMO_FLOW", "demo_main")
        assert ensure_demo(control) is None  # next start: the retry completes it
        setup = _demo_setup(control)
        assert list(setup.numbers) == ["8000"] and set(setup.queues) == {"sales", "support"}
