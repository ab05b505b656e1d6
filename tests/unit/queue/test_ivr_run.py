"""The IVR interpreter, scripted: keys, silence, lookups, hours, languages and flows."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from minicc.queue.ivr import (
    Action,
    CallerHungUp,
    CancelLookup,
    DigitPressed,
    Flow,
    FlowRun,
    HangUp,
    Lookup,
    LookupResult,
    Play,
    PromptsFinished,
    RequestCallback,
    RouteToExtension,
    RouteToQueue,
    Say,
    SetLanguage,
    StopPlayback,
    Voicemail,
    load_flow,
)
from minicc.queue.ivr_schema import PromptRef, SayKind, SetNode

# Monday 2026-03-02 10:00 in Berlin (CET).
MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
SUNDAY_10 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC).timestamp()
CHRISTMAS = datetime(2026, 12, 25, 9, 0, tzinfo=UTC).timestamp()


def flow(text: str, **kwargs: object) -> Flow:
    return load_flow(text, prompt_exists=lambda language, name: True, **kwargs)  # type: ignore[arg-type]


MAIN = flow("""
[flow]
name = "main"
start = "hours"
timezone = "Europe/Berlin"

[nodes.hours]
type = "hours"
open = ["mon-fri 08:00-20:00"]
holidays = ["12-25"]
open_next = "welcome"
closed_next = "closed"
holiday_next = "holiday"

[nodes.welcome]
type = "play"
prompts = ["welcome"]
interruptible = true
next = "menu"

[nodes.menu]
type = "menu"
prompts = ["press_1_for_sales", "press_2_for_support"]
options = { "1" = "sales", "2" = "support", "9" = "menu" }
timeout = 5
retries = 2
invalid_prompt = "invalid_option"
timeout_prompt = "no_input"
default = "support"

[nodes.sales]
type = "queue"
queue = "sales"

[nodes.support]
type = "play"
prompts = ["please_hold"]
next = "support_queue"

[nodes.support_queue]
type = "queue"
queue = "support"

[nodes.closed]
type = "play"
prompts = ["closed"]
next = "mailbox"

[nodes.mailbox]
type = "voicemail"
box = "support"

[nodes.holiday]
type = "hangup"
reason = "holiday"
""")


def names(action: Action) -> list[str]:
    assert isinstance(action, Play)
    return [
        item.name if isinstance(item, PromptRef) else f"say:{item.value}" for item in action.items
    ]


class Caller:
    """Drives a run the way the engine would, with a fake clock."""

    def __init__(self, run: FlowRun, now: float = MONDAY_10) -> None:
        self.run = run
        self.now = now
        self.log: list[Action] = []

    def _take(self, actions: list[Action]) -> list[Action]:
        self.log.extend(actions)
        assert not self.run.is_silent(), "a live run must be playing or timing"
        return actions

    def start(self) -> list[Action]:
        return self._take(self.run.start(self.now))

    def finish(self) -> list[Action]:
        """The prompt that is playing ends (a second later)."""
        assert self.run.playing is not None
        self.now += 1
        return self._take(self.run.handle(PromptsFinished(play_id=self.run.playing), self.now))

    def press(self, digit: str) -> list[Action]:
        self.now += 0.5
        return self._take(self.run.handle(DigitPressed(digit=digit), self.now))

    def wait(self) -> list[Action]:
        """Nothing happens until the run's timer fires."""
        timer = self.run.get_timer()
        assert timer is not None and timer > self.now
        self.now = timer
        return self._take(self.run.handle_timer(self.now))

    def send(self, event: object) -> list[Action]:
        return self._take(self.run.handle(event, self.now))  # type: ignore[arg-type]


def test_press_1_goes_to_sales() -> None:
    caller = Caller(FlowRun(MAIN, variables={"caller": "1001"}))
    [play] = caller.start()
    assert names(play) == ["welcome"] and play.interruptible and play.language == "en"
    [menu] = caller.finish()
    assert names(menu) == ["press_1_for_sales", "press_2_for_support"] and menu.interruptible
    assert caller.run.get_timer() is None  # the 5 s start when the prompts end
    stop, route = caller.press("1")
    assert stop == StopPlayback(play_id=menu.play_id)
    assert route == RouteToQueue(
        queue="sales",
        priority=0,
        skills=MappingProxyType({}),
        variables=MappingProxyType({"caller": "1001"}),
        language="en",
    )
    assert caller.run.ended and caller.run.get_timer() is None and caller.run.playing is None


def test_key_after_prompts_routes_without_stopping_anything() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    caller.finish()
    caller.finish()
    [route] = caller.press("1")
    assert isinstance(route, RouteToQueue) and route.queue == "sales"


def test_barge_in_during_menu_prompts_stops_them() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    [menu] = caller.finish()
    assert caller.press("2") == [
        StopPlayback(play_id=menu.play_id),
        Play(
            play_id=menu.play_id + 1,
            items=(PromptRef(name="please_hold"),),
            language="en",
            interruptible=False,
        ),
    ]


def test_type_ahead_during_welcome_skips_the_menu_prompts() -> None:
    caller = Caller(FlowRun(MAIN))
    [welcome] = caller.start()
    stop, route = caller.press("1")
    assert stop == StopPlayback(play_id=welcome.play_id)
    assert isinstance(route, RouteToQueue) and route.queue == "sales"


def test_nothing_at_all_retries_then_default() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    caller.finish()
    heard = []
    for _ in range(2):
        caller.finish()
        [replay] = caller.wait()  # 5 s of silence
        heard.append(names(replay))
    caller.finish()
    [hold] = caller.wait()
    assert heard == [["no_input", "press_1_for_sales", "press_2_for_support"]] * 2
    assert names(hold) == ["please_hold"]
    [route] = caller.finish()
    assert isinstance(route, RouteToQueue) and route.queue == "support"


def test_wrong_keys_retry_with_the_invalid_prompt_then_default() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    caller.finish()
    caller.finish()
    [replay] = caller.press("7")
    assert names(replay) == ["invalid_option", "press_1_for_sales", "press_2_for_support"]
    stop, replay2 = caller.press("#")  # barges into the replay: a second wrong key
    assert stop == StopPlayback(play_id=replay.play_id)
    assert names(replay2)[0] == "invalid_option"
    caller.finish()
    [hold] = caller.press("*")
    assert names(hold) == ["please_hold"]


def test_a_good_key_after_a_wrong_one_still_works() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    caller.finish()
    caller.finish()
    caller.press("5")
    caller.finish()
    [route] = caller.press("1")
    assert isinstance(route, RouteToQueue) and route.queue == "sales"


def test_menu_repeat_option_replays_the_menu() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    caller.finish()
    caller.finish()
    [again] = caller.press("9")
    assert names(again) == ["press_1_for_sales", "press_2_for_support"]


@pytest.mark.parametrize(
    ("now", "first", "last"),
    [
        (SUNDAY_10, "closed", Voicemail(box="support", language="en")),
        (CHRISTMAS, None, HangUp(reason="holiday")),
    ],
)
def test_closed_and_holiday(now: float, first: str | None, last: Action) -> None:
    caller = Caller(FlowRun(MAIN), now=now)
    actions = caller.start()
    if first is None:
        assert actions == [last]
    else:
        assert names(actions[0]) == [first]
        assert caller.finish() == [last]
    assert caller.run.ended


def test_stale_and_early_events_are_ignored() -> None:
    caller = Caller(FlowRun(MAIN))
    assert caller.run.handle(DigitPressed(digit="1"), caller.now) == []  # not started
    [welcome] = caller.start()
    assert caller.run.handle_timer(caller.now + 100) == []  # no timer armed
    caller.finish()
    assert caller.send(PromptsFinished(play_id=welcome.play_id)) == []  # already finished
    assert caller.send(LookupResult(request_id=1, result="x")) == []
    caller.finish()
    assert caller.run.handle_timer(caller.now + 1) == []  # early
    assert caller.run.get_timer() == caller.now + 5


def test_caller_hanging_up_ends_the_run() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    assert caller.run.handle(CallerHungUp(), caller.now) == []
    assert caller.run.ended and caller.run.get_timer() is None
    assert caller.run.handle(DigitPressed(digit="1"), caller.now) == []


def test_start_twice_is_an_error() -> None:
    run = FlowRun(MAIN)
    run.start(MONDAY_10)
    with pytest.raises(RuntimeError):
        run.start(MONDAY_10)


def test_clock_stepped_back_moves_the_timer_with_it() -> None:
    caller = Caller(FlowRun(MAIN))
    caller.start()
    caller.finish()
    caller.finish()
    due = caller.run.get_timer()
    assert due is not None
    # NTP steps the wall clock back an hour while the caller waits.
    assert caller.run.handle_timer(caller.now - 3600) == []
    assert caller.run.get_timer() == due - 3600
    assert len(caller.run.handle_timer(due - 3600)) == 1


ORDERS = flow("""
[flow]
name = "orders"
start = "ask"

[nodes.ask]
type = "collect"
prompts = ["enter_order_number"]
into = "order"
min_digits = 4
max_digits = 8
timeout = 6
digit_timeout = 3
retries = 1
invalid_prompt = "invalid_option"
next = "status"
default = "agent"

[nodes.status]
type = "lookup"
hook = "order_status"
input = "ORD-{order}"
timeout = 4
prompts = ["one_moment"]
branches = { "shipped" = "shipped", "unknown" = "ask" }
fallback = "agent"

[nodes.shipped]
type = "play"
prompts = ["order", { digits = "{order}" }, "arrives_on", { number = "{result.day}" }]
next = "bye"

[nodes.bye]
type = "hangup"

[nodes.agent]
type = "set"
priority = 5
skills = { orders = 3 }
variables = { reason = "order {order}" }
next = "queue"

[nodes.queue]
type = "queue"
queue = "support"
skills = { english = 2 }
""")


def collect(caller: Caller, keys: str) -> list[Action]:
    out: list[Action] = []
    for key in keys:
        out += caller.press(key)
    return out


def test_collect_then_lookup_branch_and_say_the_result() -> None:
    caller = Caller(FlowRun(ORDERS))
    [ask] = caller.start()
    assert names(ask) == ["enter_order_number"]
    actions = collect(caller, "1234#")
    assert actions[0] == StopPlayback(play_id=ask.play_id)
    lookup, wait_prompt = actions[1:]
    assert lookup == Lookup(request_id=1, hook="order_status", input="ORD-1234", timeout=4)
    assert names(wait_prompt) == ["one_moment"] and not wait_prompt.interruptible
    assert caller.run.variables["order"] == "1234"
    # The answer arrives while "one moment" still plays: it is let finish.
    result = LookupResult(request_id=1, result="shipped", data={"day": "14"})
    assert caller.send(result) == []
    [play] = caller.finish()
    assert names(play) == ["order", "say:1234", "arrives_on", "say:14"]
    assert play.items[1] == Say(kind=SayKind.DIGITS, value="1234")
    assert caller.finish() == [HangUp(reason="normal")]


def test_collect_ends_at_max_digits_or_inter_digit_timeout() -> None:
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    assert isinstance(collect(caller, "12345678")[-2], Lookup)
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    collect(caller, "98765")
    assert caller.run.get_timer() == caller.now + 3
    lookup = caller.wait()[0]
    assert isinstance(lookup, Lookup) and lookup.input == "ORD-98765"


def test_too_few_digits_retry_then_default() -> None:
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    [replay] = collect(caller, "12#")[1:]
    assert names(replay) == ["invalid_option", "enter_order_number"]
    caller.finish()
    caller.press("9")
    [route] = caller.wait()  # inter-digit timeout with one digit: too few, retries used up
    assert isinstance(route, RouteToQueue)
    assert route.priority == 5
    assert dict(route.skills) == {"orders": 3, "english": 2}
    assert route.variables["reason"] == "order "


def test_lookup_timeout_takes_the_fallback_and_ignores_a_late_answer() -> None:
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    collect(caller, "4711#")
    caller.finish()  # "one moment" done, still no answer
    assert caller.run.get_timer() == caller.now - 1 + 4
    cancel, route = caller.wait()
    assert cancel == CancelLookup(request_id=1)
    assert isinstance(route, RouteToQueue) and route.variables["reason"] == "order 4711"
    assert caller.run.handle(LookupResult(request_id=1, result="shipped"), caller.now) == []


@pytest.mark.parametrize(
    "answer",
    [
        LookupResult(request_id=1, error="HTTP 500"),
        LookupResult(request_id=1, result="lost"),
        LookupResult(request_id=1),
    ],
)
def test_lookup_error_or_unknown_result_takes_the_fallback(answer: LookupResult) -> None:
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    collect(caller, "4711#")
    caller.finish()
    [route] = caller.send(answer)
    assert isinstance(route, RouteToQueue)


def test_lookup_branch_back_to_collect_asks_again_and_keys_during_lookup_type_ahead() -> None:
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    collect(caller, "1111#")
    caller.finish()
    assert collect(caller, "2222") == []  # typed during the lookup: kept
    # Back in the collect node, the typed digits count; it waits for more or the timeout.
    assert caller.send(LookupResult(request_id=1, result="unknown")) == []
    lookup = caller.wait()[0]
    assert isinstance(lookup, Lookup) and lookup.input == "ORD-2222" and lookup.request_id == 2


def test_hang_up_during_lookup_cancels_it() -> None:
    caller = Caller(FlowRun(ORDERS))
    caller.start()
    collect(caller, "1111#")
    assert caller.run.handle(CallerHungUp(), caller.now) == [CancelLookup(request_id=1)]


LANGUAGES = flow("""
[flow]
name = "lang"
start = "choose"

[nodes.choose]
type = "language"
prompts = ["for_english_press_1", "fuer_deutsch_2"]
options = { "1" = "en", "2" = "de" }
next = "menu"

[nodes.menu]
type = "menu"
prompts = ["press_1_for_sales"]
options = { "1" = "sales" }
default = "sales"

[nodes.sales]
type = "queue"
queue = "sales"
""")


def test_language_choice_changes_the_prompt_language() -> None:
    caller = Caller(FlowRun(LANGUAGES))
    [choose] = caller.start()
    assert choose.language == "en"
    stop, switched, menu = caller.press("2")
    assert isinstance(stop, StopPlayback) and switched == SetLanguage(language="de")
    assert menu.language == "de" and names(menu) == ["press_1_for_sales"]
    caller.finish()
    [route] = caller.press("1")
    assert isinstance(route, RouteToQueue) and route.language == "de"


def test_no_language_choice_keeps_the_default() -> None:
    caller = Caller(FlowRun(LANGUAGES))
    caller.start()
    for _ in range(4):
        caller.finish()
        out = caller.wait()
    assert isinstance(out[0], Play) and out[0].language == "en"
    assert names(out[0]) == ["press_1_for_sales"]


def test_starting_language_can_be_given() -> None:
    [play] = FlowRun(LANGUAGES, language="de").start(MONDAY_10)
    assert isinstance(play, Play) and play.language == "de"


SUB = flow(
    """
[flow]
name = "sub"
start = "ext"

[nodes.ext]
type = "collect"
prompts = ["enter_extension"]
into = "ext"
min_digits = 3
max_digits = 4
default = "back"
next = "dial"

[nodes.dial]
type = "extension"
number = "{ext}"

[nodes.back]
type = "flow"
flow = "sub2"
""",
    known_flows={"sub2"},
)

CALLBACK = flow("""
[flow]
name = "cb"
start = "offer"

[nodes.offer]
type = "callback"
queue = "support"
next = "bye"

[nodes.bye]
type = "play"
prompts = ["we_will_call_you"]
next = "end"

[nodes.end]
type = "hangup"
""")


def test_extension_from_collected_digits() -> None:
    caller = Caller(FlowRun(SUB))
    caller.start()
    assert collect(caller, "1002")[-1] == RouteToExtension(
        number="1002", variables=MappingProxyType({"ext": "1002"})
    )


def test_flow_node_continues_in_the_other_flow() -> None:
    flows = {"sub2": CALLBACK}
    caller = Caller(FlowRun(SUB, flows=flows.get, variables={"caller": "+4930123"}))
    caller.start()
    for _ in range(4):
        caller.finish()
        out = caller.wait()
    callback, play = out
    assert callback == RequestCallback(
        queue="support", number="+4930123", variables=MappingProxyType({"caller": "+4930123"})
    )
    assert caller.run.flow is CALLBACK and names(play) == ["we_will_call_you"]
    assert caller.finish() == [HangUp(reason="normal")]


def test_flow_node_to_a_missing_flow_hangs_up() -> None:
    caller = Caller(FlowRun(SUB, flows={}.get))
    caller.start()
    for _ in range(4):
        caller.finish()
        out = caller.wait()
    assert out == [HangUp(reason="flow unavailable")]


def test_extension_with_nothing_to_dial_hangs_up() -> None:
    text = """
[flow]
name = "x"
start = "dial"
[nodes.dial]
type = "extension"
number = "{nobody}"
"""
    assert FlowRun(flow(text)).start(MONDAY_10) == [HangUp(reason="no destination")]


def test_runtime_loop_guard_hangs_up() -> None:
    # The loader refuses this flow; build it by hand to test the guard behind it.
    looped = Flow(
        name="bad",
        start="a",
        language="en",
        timezone="UTC",
        nodes={
            "a": SetNode(id="a", next="b"),
            "b": SetNode(id="b", next="a"),
        },
        source="bad.toml",
    )
    out = FlowRun(looped, max_steps=10).start(MONDAY_10)
    assert out == [HangUp(reason="loop")]


def test_cross_flow_loop_of_silent_callers_hangs_up() -> None:
    # Two flows that each hand a silent caller to the other: each loads, since neither can
    # see the other, and only the runtime guard stops the caller going round for ever.
    a = flow("""
[flow]
name = "a"
start = "m"
[nodes.m]
type = "menu"
prompts = ["x"]
options = { "1" = "q" }
retries = 0
default = "other"
[nodes.q]
type = "queue"
queue = "q"
[nodes.other]
type = "flow"
flow = "b"
""")
    b = flow("""
[flow]
name = "b"
start = "p"
[nodes.p]
type = "play"
prompts = ["y"]
next = "back"
[nodes.back]
type = "flow"
flow = "a"
""")
    caller = Caller(FlowRun(a, flows={"a": a, "b": b}.get, max_steps=20))
    caller.start()
    while not caller.run.ended:
        caller.finish()
        if caller.run.get_timer() is not None:
            caller.wait()
    assert len(caller.log) < 40
    assert caller.log[-1] == HangUp(reason="loop")


SAYING = flow("""
[flow]
name = "say"
start = "tell"

[nodes.tell]
type = "play"
prompts = [{ date = "{d}" }, { digits = "{k}" }, { number = "{n}" }, { minutes = "{m}" }]
next = "nothing"

[nodes.nothing]
type = "play"
prompts = [{ number = "{unset}" }, { date = "soon" }]
next = "end"

[nodes.end]
type = "hangup"
""")


def test_say_items_are_rendered_and_unsayable_ones_dropped() -> None:
    variables = {"d": "2026-03-14T10:00:00+01:00", "k": "12A#", "n": "7.6", "m": "-3"}
    caller = Caller(FlowRun(SAYING, variables=variables))
    [play] = caller.start()
    assert isinstance(play, Play)
    assert play.items == (
        Say(kind=SayKind.DATE, value="2026-03-14"),
        Say(kind=SayKind.DIGITS, value="12#"),
        Say(kind=SayKind.NUMBER, value="8"),
    )
    # A play node with nothing sayable is passed over rather than played silent.
    assert caller.finish() == [HangUp(reason="normal")]
