"""Loading IVR flows: every rejection names the file, the node and the field."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from minicc.queue.hours import HoursStatus
from minicc.queue.ivr_schema import (
    CollectNode,
    FlowError,
    HoursNode,
    LookupNode,
    MenuNode,
    PromptRef,
    SayItem,
    SayKind,
)
from minicc.queue.ivr_validate import load_flow

ROOT = Path(__file__).resolve().parents[3]
NAMES = [
    "welcome",
    "press_1_for_sales",
    "press_2_for_support",
    "invalid_option",
    "no_input",
    "please_hold",
    "closed",
    "goodbye",
    "enter_order_number",
    "one_moment",
    "order",
    "was_shipped",
    "choose_language",
]
PROMPTS = {(lang, name) for lang in ("en", "de") for name in NAMES}

GOOD = """
[flow]
name = "support"
start = "welcome"
timezone = "Europe/Berlin"

[nodes.welcome]
type = "play"
prompts = ["welcome"]
next = "menu1"

[nodes.menu1]
type = "menu"
prompts = ["press_1_for_sales", "press_2_for_support"]
options = { "1" = "sales", "2" = "support" }
default = "support"

[nodes.sales]
type = "queue"
queue = "sales"

[nodes.support]
type = "queue"
queue = "support"
"""


def load(text: str, **kwargs: object) -> object:
    kwargs.setdefault("prompt_exists", PROMPTS)
    return load_flow(text, filename="support.toml", **kwargs)  # type: ignore[arg-type]


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load(text, **kwargs)
    return [str(problem) for problem in caught.value.problems]


def test_the_good_flow_loads() -> None:
    flow = load_flow(GOOD, prompt_exists=PROMPTS, known_queues={"sales", "support"})
    assert flow.name == "support" and flow.start == "welcome" and flow.language == "en"
    assert flow.timezone == "Europe/Berlin"
    assert set(flow.nodes) == {"welcome", "menu1", "sales", "support"}
    menu = flow.nodes["menu1"]
    assert isinstance(menu, MenuNode)
    assert dict(menu.options) == {"1": "sales", "2": "support"}
    assert (menu.timeout, menu.retries) == (5.0, 3)
    assert flow.warnings == ()


# -- the four bad inputs the issue names ------------------------------------------------------


def test_unknown_node_is_named_with_the_known_ones() -> None:
    text = GOOD.replace('"1" = "sales"', '"1" = "sales", "3" = "sales2"')
    assert problems(text) == [
        'support.toml: node "menu1" field "options.3": unknown node "sales2" '
        "(known: menu1, sales, support, welcome)"
    ]


def test_missing_prompt_is_named_with_its_language() -> None:
    text = GOOD.replace('prompts = ["welcome"]', 'prompts = ["welcome", "welcom2"]')
    assert problems(text) == [
        'support.toml: node "welcome" field "prompts[1]": missing prompt "welcom2" (language "en")'
    ]


def test_bad_time_zone_is_named() -> None:
    text = GOOD.replace('"Europe/Berlin"', '"Europe/Berln"')
    assert problems(text) == [
        'support.toml: [flow] field "timezone": unknown time zone "Europe/Berln" '
        '(use an IANA name like "Europe/Berlin")'
    ]


def test_cycle_that_never_waits_for_input_names_its_nodes() -> None:
    text = (
        GOOD
        + """
[nodes.again]
type = "play"
prompts = ["please_hold"]
next = "still"

[nodes.still]
type = "set"
priority = 1
next = "again"
"""
    )
    text = text.replace('"2" = "support"', '"2" = "again"')
    assert problems(text) == [
        'support.toml: node "again" field "next": loop "again" -> "still" -> "again" never waits '
        "for caller input (add a menu or collect to it, or end it with a hangup)"
    ]


def test_self_loop_and_hours_and_lookup_loops_are_caught() -> None:
    text = GOOD.replace('next = "menu1"', 'next = "welcome"')
    assert problems(text)[0] == (
        'support.toml: node "welcome" field "next": loop "welcome" -> "welcome" never waits '
        "for caller input (add a menu or collect to it, or end it with a hangup)"
    )
    text = (
        GOOD
        + """
[nodes.check]
type = "lookup"
hook = "order_status"
input = "{caller}"
branches = { "vip" = "sales" }
fallback = "check"
"""
    )
    text = text.replace('"2" = "support"', '"2" = "check"')
    assert problems(text) == [
        'support.toml: node "check" field "fallback": loop "check" -> "check" never waits '
        "for caller input (add a menu or collect to it, or end it with a hangup)"
    ]


def test_loop_taken_forever_by_a_silent_caller_is_rejected() -> None:
    text = GOOD.replace('default = "support"', 'default = "welcome"')
    assert problems(text) == [
        'support.toml: node "menu1" field "default": loop "menu1" -> "welcome" -> "menu1" is '
        "taken forever by a caller who presses nothing (send the default somewhere that ends "
        "the call)"
    ]


def test_loop_through_a_key_is_fine() -> None:
    # "9 to hear the menu again" waits for the caller each time round.
    text = GOOD.replace('"2" = "support"', '"2" = "support", "9" = "welcome"')
    assert load(text) is not None


def test_flow_restarting_itself_counts_as_a_loop() -> None:
    text = (
        GOOD.replace('default = "support"', 'default = "again"')
        + """
[nodes.again]
type = "flow"
flow = "support"
"""
    )
    assert problems(text, known_flows={"billing"}) == [
        'support.toml: node "menu1" field "default": loop "menu1" -> "again" -> "welcome" -> '
        '"menu1" is taken forever by a caller who presses nothing (send the default somewhere '
        "that ends the call)"
    ]


# -- field checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'type = "menu"',
            'type = "menuu"',
            'support.toml: node "menu1" field "type": unknown type "menuu" (use play, menu, '
            "collect, hours, language, set, queue, extension, flow, voicemail, callback, hangup, "
            "lookup)",
        ),
        (
            'default = "support"',
            "",
            'support.toml: node "menu1" field "default": missing (where a menu sends callers '
            "after the retries, so none ends in silence)",
        ),
        (
            'default = "support"',
            'default = "support"\ntimeout = 0',
            'support.toml: node "menu1" field "timeout": 0 is out of range (must be > 0 and at '
            "most 60 seconds)",
        ),
        (
            'default = "support"',
            'default = "support"\ntimeout = "5s"',
            'support.toml: node "menu1" field "timeout": expected a number of seconds, got "5s"',
        ),
        (
            'default = "support"',
            'default = "support"\nretries = 11',
            'support.toml: node "menu1" field "retries": 11 is out of range (0 to 10)',
        ),
        (
            'default = "support"',
            'default = "support"\ntimout = 5',
            'support.toml: node "menu1" field "timout": unknown field for a menu node (allowed: '
            "default, description, invalid_prompt, options, prompts, retries, timeout, "
            "timeout_prompt, type)",
        ),
        (
            '"2" = "support"',
            '"2" = "support", "12" = "sales"',
            'support.toml: node "menu1" field "options.12": "12" is not a key (use one of '
            "0123456789*#ABCD)",
        ),
        (
            'prompts = ["welcome"]',
            "prompts = []",
            'support.toml: node "welcome" field "prompts": expected a list of prompts, got a list',
        ),
        (
            'prompts = ["welcome"]',
            'prompts = ["welcome", { spell = "{x}" }]',
            'support.toml: node "welcome" field "prompts[1]": unknown say kind "spell" (use '
            "number, digits, minutes, date)",
        ),
        (
            'prompts = ["welcome"]',
            'prompts = ["welcome", { number = "{x" }]',
            'support.toml: node "welcome" field "prompts[1].number": bad placeholder at "{x" '
            'in "{x"',
        ),
        (
            'queue = "sales"',
            'queue = "sale"',
            'support.toml: node "sales" field "queue": unknown queue "sale" (known: sales, '
            "support)",
        ),
        (
            'start = "welcome"',
            'start = "welcome"\nstrat = "x"',
            'support.toml: [flow] field "strat": unknown field for [flow] (allowed: description, '
            "language, name, start, timezone)",
        ),
        (
            'start = "welcome"',
            'start = "welcom"',
            'support.toml: [flow] field "start": unknown node "welcom" (known: menu1, sales, '
            "support, welcome)",
        ),
        (
            'name = "support"',
            'name = "support"\nlanguage = "English"',
            'support.toml: [flow] field "language": bad language code "English" (use e.g. "en", '
            '"de", "pt-BR")',
        ),
    ],
)
def test_field_problems(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    assert problems(text, known_queues={"sales", "support"}) == [expected]


COLLECT = (
    GOOD.replace('"2" = "support"', '"2" = "order"')
    + """
[nodes.order]
type = "collect"
prompts = ["enter_order_number"]
into = "order"
min_digits = 4
max_digits = 12
next = "status"
default = "support"

[nodes.status]
type = "lookup"
hook = "order_status"
input = "{order}"
prompts = ["one_moment"]
branches = { "shipped" = "shipped" }
fallback = "support"

[nodes.shipped]
type = "play"
prompts = ["order", { digits = "{order}" }, "was_shipped", { number = 3 }]
next = "bye"

[nodes.bye]
type = "hangup"
"""
)


def test_collect_and_lookup_load() -> None:
    flow = load(COLLECT, hooks={"order_status"})
    collect, lookup, play = (flow.nodes[n] for n in ("order", "status", "shipped"))  # type: ignore[attr-defined]
    assert isinstance(collect, CollectNode) and (collect.min_digits, collect.max_digits) == (4, 12)
    assert collect.terminator == "#" and collect.into == "order"
    assert isinstance(lookup, LookupNode) and lookup.into == "result" and lookup.timeout == 5.0
    assert play.prompts[0] == PromptRef(name="order")
    assert isinstance(play.prompts[1], SayItem) and play.prompts[1].kind is SayKind.DIGITS
    assert str(play.prompts[3].template) == "3"


def test_collect_and_lookup_field_problems() -> None:
    text = COLLECT.replace("min_digits = 4", "min_digits = 14").replace(
        'hook = "order_status"', 'hook = "order_stats"'
    )
    text = text.replace('into = "order"', 'into = "order no"\nterminator = "5"')
    assert problems(text, hooks={"order_status"}) == [
        'support.toml: node "order" field "into": bad variable name "order no" (letters, digits '
        'and "_")',
        'support.toml: node "order" field "min_digits": min_digits 14 is above max_digits 12',
        'support.toml: node "order" field "terminator": bad terminator "5" (use "#", "*" or "" '
        "for none)",
        'support.toml: node "status" field "hook": unknown hook "order_stats" (known: '
        "order_status)",
    ]


def test_lookup_needs_a_fallback() -> None:
    text = COLLECT.replace('fallback = "support"\n', "")
    assert problems(text) == ['support.toml: node "status" field "fallback": missing']


HOURS = (
    GOOD.replace('start = "welcome"', 'start = "open"')
    + """
[nodes.open]
type = "hours"
open = ["mon-fri 08:00-18:00", "sat 09:00-13:00"]
holidays = ["12-25", "2026-12-24"]
open_next = "welcome"
closed_next = "closed"

[nodes.closed]
type = "play"
prompts = ["closed"]
next = "mailbox"

[nodes.mailbox]
type = "voicemail"
box = "support"
"""
)


def test_hours_node_uses_the_flow_time_zone() -> None:
    flow = load(HOURS)
    node = flow.nodes["open"]  # type: ignore[attr-defined]
    assert isinstance(node, HoursNode) and node.holiday_next == "closed"
    assert str(node.hours.timezone) == "Europe/Berlin"
    assert node.hours.status(1798189200.0) is HoursStatus.HOLIDAY  # 2026-12-24 10:00 CET


def test_hours_problems_name_the_line() -> None:
    text = HOURS.replace('"sat 09:00-13:00"', '"sat 9:00-13"').replace('"12-25"', '"25.12."')
    text = text.replace('closed_next = "closed"', 'closed_next = "closed"\ntimezone = "Mars/Base"')
    assert problems(text) == [
        'support.toml: node "open" field "open[1]": bad schedule "sat 9:00-13": bad time "13" '
        "(use HH:MM)",
        'support.toml: node "open" field "holidays[0]": bad holiday "25.12.": use YYYY-MM-DD, or '
        "MM-DD for every year",
        'support.toml: node "open" field "timezone": unknown time zone "Mars/Base" (use an IANA '
        'name like "Europe/Berlin")',
    ]


LANGUAGE = (
    GOOD.replace('start = "welcome"', 'start = "lang"')
    + """
[nodes.lang]
type = "language"
prompts = ["choose_language"]
options = { "1" = "en", "2" = "de", "3" = "fr" }
next = "welcome"
"""
)


def test_prompts_must_exist_in_every_language_a_caller_can_choose() -> None:
    assert problems(LANGUAGE) == [
        f'support.toml: node "{node}" field "{field}": missing prompt "{name}" (language "fr")'
        for node, field, name in [
            ("welcome", "prompts[0]", "welcome"),
            ("menu1", "prompts[0]", "press_1_for_sales"),
            ("menu1", "prompts[1]", "press_2_for_support"),
        ]
    ]
    # Before the choice only the flow's own language is needed.
    only_english = {p for p in PROMPTS if p[0] == "en"} | {("de", n) for n in NAMES}
    only_english.discard(("de", "choose_language"))
    assert load(LANGUAGE.replace(', "3" = "fr"', ""), prompt_exists=only_english) is not None


def test_prompt_catalogue_may_be_a_callable() -> None:
    seen: list[tuple[str, str]] = []

    def exists(language: str, name: str) -> bool:
        seen.append((language, name))
        return name != "welcome"

    assert problems(GOOD, prompt_exists=exists) == [
        'support.toml: node "welcome" field "prompts[0]": missing prompt "welcome" (language "en")'
    ]
    assert ("en", "press_2_for_support") in seen


def test_unreachable_nodes_are_warnings() -> None:
    flow = load(GOOD + '\n[nodes.old]\ntype = "hangup"\n')
    assert [str(w) for w in flow.warnings] == [  # type: ignore[attr-defined]
        'support.toml: node "old": unreachable from start "welcome"'
    ]


def test_all_problems_come_at_once() -> None:
    text = GOOD.replace('"Europe/Berlin"', '"Nowhere"').replace('"sales"\n', '"salez"\n', 1)
    text = text.replace('prompts = ["welcome"]', 'prompts = ["welcom"]')
    found = problems(text, known_queues={"sales", "support"})
    assert len(found) == 3
    assert all(line.startswith("support.toml: ") for line in found)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[flow]\nname = "x"\nstart = \n', encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_flow(path, prompt_exists=PROMPTS)
    assert re.fullmatch(
        r"broken\.toml: not valid TOML: .*\(at line 3, column 9\)", str(caught.value)
    )


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as caught:
        load_flow(tmp_path / "gone.toml", prompt_exists=PROMPTS)
    assert str(caught.value) == "gone.toml: cannot read: No such file or directory"


def test_flow_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "night_line.toml"
    path.write_text(GOOD.replace('name = "support"\n', ""), encoding="utf-8")
    flow = load_flow(path, prompt_exists=PROMPTS)
    assert flow.name == "night_line" and flow.source == "night_line.toml"


def test_a_rejected_file_leaves_the_live_flow_alone(tmp_path: Path) -> None:
    """What `minicc ivr load` does: only a flow that loads replaces the live one."""
    path = tmp_path / "support.toml"
    path.write_text(GOOD, encoding="utf-8")
    live = {"support": load_flow(path, prompt_exists=PROMPTS)}
    path.write_text(GOOD.replace('"Europe/Berlin"', '"Europe/Berln"'), encoding="utf-8")
    with contextlib.suppress(FlowError):
        live["support"] = load_flow(path, prompt_exists=PROMPTS)
    assert live["support"].timezone == "Europe/Berlin"


def test_demo_flow_loads() -> None:
    path = ROOT / "minicc/queue/flows/demo_main.toml"
    flow = load_flow(path, prompt_exists=PROMPTS, known_queues={"sales", "support"})
    assert flow.name == "demo_main" and flow.warnings == ()


def test_demo_flow_commented_lookup_loads_when_enabled() -> None:
    text = (ROOT / "minicc/queue/flows/demo_main.toml").read_text(encoding="utf-8")
    enabled = re.sub(
        r"(?m)^# (\[nodes\.|type|prompts|into|min_|max_|terminator|timeout|retries|"
        r"invalid_|next|default|hook|input|branches|fallback)",
        r"\1",
        text,
    )
    enabled = enabled.replace('"2" = "support" }', '"2" = "support", "3" = "order_number" }')
    extra = {("en", n) for n in ("order_status_is", "shipped", "expected_delivery", "not_found")}
    flow = load_flow(enabled, prompt_exists=PROMPTS | extra, hooks={"order_status"})
    assert {"order_number", "order_status", "say_shipped", "say_not_found", "bye"} <= set(
        flow.nodes
    )
    assert flow.warnings == ()


def _docs() -> str:
    return (ROOT / "docs/ivr.md").read_text(encoding="utf-8")


def test_the_complete_example_in_the_docs_loads_cleanly() -> None:
    example = _docs().split("## A complete example", 1)[1]
    text = re.search(r"```toml\n(.*?)```", example, re.S).group(1)  # type: ignore[union-attr]
    flow = load_flow(
        text,
        prompt_exists=lambda language, name: language in ("en", "de"),
        known_queues={"sales", "support"},
        hooks={"order_status", "customer_tier"},
        filename="orders.toml",
    )
    assert flow.warnings == ()
    kinds = {type(node).__name__ for node in flow.nodes.values()}
    assert kinds >= {
        "HoursNode",
        "LanguageNode",
        "PlayNode",
        "MenuNode",
        "CollectNode",
        "LookupNode",
        "SetNode",
        "QueueNode",
        "VoicemailNode",
        "CallbackNode",
        "HangupNode",
    }


def test_error_lines_in_the_docs_have_the_real_shape() -> None:
    block = _docs().split("## Error messages", 1)[1]
    lines = re.search(r"```\n(.*?)```", block, re.S).group(1).splitlines()  # type: ignore[union-attr]
    shape = re.compile(
        r'support\.toml: (\[flow\] field "[^"]+"|node "[^"]+"( field "[^"]+")?|not valid TOML): '
    )
    assert lines and all(shape.match(line) for line in lines), lines
