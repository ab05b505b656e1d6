"""Live statistics against hand-computed values from a scripted day."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.queue.agents import AgentBoard, AgentState, AgentStateChanged, HoldExpired
from minicc.queue.stats import (
    CallAbandoned,
    CallAnswered,
    CallbackRequested,
    CallJoined,
    CallLeft,
    LeaveReason,
    LiveStats,
    QueueEvent,
)

S = AgentState


class Scripted:
    """An agent board and a stats accumulator fed from it, as the engine will do."""

    def __init__(self) -> None:
        self.board = AgentBoard()
        self.stats = LiveStats(period_start=0.0)
        self.stats.add_queue("sales", service_level_threshold=20.0)
        self.stats.add_queue("support", service_level_threshold=20.0)

    def feed(self, events: list[AgentStateChanged] | list[AgentStateChanged | HoldExpired]) -> None:
        for event in events:
            if isinstance(event, AgentStateChanged):
                self.stats.apply(event)

    def queue(self, event: QueueEvent) -> None:
        self.stats.apply(event)


def scripted_day() -> Scripted:
    day = Scripted()
    board, feed, queue = day.board, day.feed, day.queue
    for agent_id, queues in (("a1", ["sales"]), ("a2", ["sales", "support"])):
        board.add(agent_id, now=0.0)
        feed(board.login(agent_id, now=0.0, queues=queues))
    queue(CallJoined(queue="sales", call_id="c1", at=0.0))
    queue(CallJoined(queue="sales", call_id="c2", at=5.0))
    queue(CallJoined(queue="sales", call_id="c3", at=10.0))
    feed(board.offer("a1", call_id="c1", queue="sales", now=12.0))
    feed(board.answered("a1", call_id="c1", now=15.0))
    queue(CallAnswered(queue="sales", call_id="c1", at=15.0, agent_id="a1"))  # waited 15
    queue(CallAbandoned(queue="sales", call_id="c2", at=30.0))  # waited 25
    feed(board.offer("a2", call_id="c3", queue="sales", now=40.0))
    feed(board.missed("a2", call_id="c3", now=55.0, max_misses=3))
    queue(CallAbandoned(queue="sales", call_id="c3", at=60.0))  # waited 50
    feed(board.pause("a2", now=70.0, reason="lunch"))
    feed(board.call_ended("a1", call_id="c1", now=75.0, wrap_up=10.0))
    feed(board.tick(85.0))
    feed(board.unpause("a2", now=90.0))
    queue(CallJoined(queue="sales", call_id="c4", at=100.0))
    feed(board.offer("a1", call_id="c4", queue="sales", now=101.0))
    feed(board.answered("a1", call_id="c4", now=103.0))
    queue(CallAnswered(queue="sales", call_id="c4", at=103.0, agent_id="a1"))  # waited 3
    queue(CallJoined(queue="sales", call_id="c5", at=104.0))
    queue(CallbackRequested(queue="sales", call_id="c5", at=106.0))
    queue(CallJoined(queue="sales", call_id="c6", at=107.0))
    queue(CallLeft(queue="sales", call_id="c6", at=108.0, reason=LeaveReason.MAX_WAIT))
    return day


def test_queue_figures_of_a_scripted_day() -> None:
    snap = scripted_day().stats.snapshot(110.0)
    sales = snap.queues["sales"]
    assert (sales.waiting, sales.callbacks_waiting, sales.longest_wait) == (1, 1, 6.0)
    assert (sales.offered, sales.answered, sales.abandoned) == (6, 2, 2)
    assert dict(sales.left) == {LeaveReason.MAX_WAIT: 1}
    assert sales.callbacks_requested == 1
    assert (sales.answered_within, sales.abandoned_within) == (2, 0)
    assert (sales.answer_wait_total, sales.answer_wait_max) == (18.0, 15.0)
    assert (sales.abandon_wait_total, sales.abandon_wait_max) == (75.0, 50.0)
    assert sales.avg_abandon_wait == 37.5
    assert sales.service_level == 50.0  # 2 within / (2 answered + 2 abandoned after 20 s)
    assert sales.asa == 9.0
    # c1 handled: talk 15-75, wrap-up 75-85. c4 is still in talk and not in AHT yet.
    assert (sales.handled, sales.talk_total, sales.wrap_up_total, sales.aht) == (
        1,
        60.0,
        10.0,
        70.0,
    )
    # Busy on sales calls 60 + 10 + 7; staffed: a1 110, a2 110 - 20 paused.
    assert sales.occupancy == pytest.approx(77 / 200)
    support = snap.queues["support"]
    assert (support.offered, support.waiting, support.longest_wait) == (0, 0, 0.0)
    assert support.service_level is None and support.asa is None and support.aht is None
    assert support.occupancy == 0.0


def test_agent_figures_of_a_scripted_day() -> None:
    snap = scripted_day().stats.snapshot(110.0)
    a1 = snap.agents["a1"]
    assert (a1.state, a1.since, a1.calls_handled) == (S.ON_CALL, 103.0, 2)
    assert dict(a1.time_in) == {
        (S.AVAILABLE, None): 28.0,
        (S.RESERVED, None): 5.0,
        (S.ON_CALL, None): 67.0,
        (S.WRAP_UP, None): 10.0,
    }
    assert a1.occupancy == pytest.approx(77 / 110)
    a2 = snap.agents["a2"]
    assert (a2.state, a2.reason, a2.calls_handled) == (S.AVAILABLE, None, 0)
    assert dict(a2.time_in) == {
        (S.AVAILABLE, None): 75.0,
        (S.RESERVED, None): 15.0,
        (S.PAUSED, "lunch"): 20.0,
    }
    assert a2.occupancy == 0.0


def test_stats_agree_with_the_board_time_accounting() -> None:
    day = scripted_day()
    snap = day.stats.snapshot(110.0)
    for agent_id in ("a1", "a2"):
        from_board = {k: v for k, v in day.board[agent_id].time_in_state(110.0).items() if v}
        assert dict(snap.agents[agent_id].time_in) == from_board


def test_reset_starts_a_new_period() -> None:
    day = scripted_day()
    day.stats.reset(110.0)
    day.feed(day.board.call_ended("a1", call_id="c4", now=120.0, wrap_up=5.0))
    day.feed(day.board.tick(125.0))
    snap = day.stats.snapshot(130.0)
    sales = snap.queues["sales"]
    assert (sales.offered, sales.answered, sales.abandoned, sales.waiting) == (0, 0, 0, 1)
    assert sales.longest_wait == 26.0  # c5 still waiting since 104
    # c4 is handled in this period with all its talk (103-120) and wrap-up (120-125).
    assert (sales.handled, sales.talk_total, sales.wrap_up_total) == (1, 17.0, 5.0)
    assert dict(snap.agents["a1"].time_in) == {
        (S.ON_CALL, None): 10.0,
        (S.WRAP_UP, None): 5.0,
        (S.AVAILABLE, None): 5.0,
    }
    assert snap.agents["a1"].calls_handled == 0
    assert snap.period_start == 110.0
    assert sales.occupancy == pytest.approx(15 / 40)  # a1 and a2 staffed 20 s each


def test_answered_call_wait_uses_the_original_join_of_a_restored_callback() -> None:
    stats = LiveStats()
    stats.add_queue("q", service_level_threshold=30.0)
    stats.apply(CallJoined(queue="q", call_id="c", at=500.0, joined_at=100.0, callback=True))
    snap = stats.snapshot(510.0).queues["q"]
    assert (snap.waiting, snap.callbacks_waiting, snap.longest_wait) == (1, 1, 410.0)
    stats.apply(CallAnswered(queue="q", call_id="c", at=520.0, agent_id="a"))
    assert stats.snapshot(520.0).queues["q"].asa == 420.0


def test_short_abandons_are_left_out_of_the_service_level() -> None:
    stats = LiveStats()
    stats.add_queue("q", service_level_threshold=20.0)
    for n, (outcome, wait) in enumerate(
        [("answer", 20.0), ("answer", 20.5), ("abandon", 5.0), ("abandon", 21.0)]
    ):
        stats.apply(CallJoined(queue="q", call_id=f"c{n}", at=0.0))
        if outcome == "answer":
            stats.apply(CallAnswered(queue="q", call_id=f"c{n}", at=wait, agent_id="a"))
        else:
            stats.apply(CallAbandoned(queue="q", call_id=f"c{n}", at=wait))
    snap = stats.snapshot(30.0).queues["q"]
    # 1 answered within 20 s (inclusive) / (2 answered + 1 abandoned after 20 s).
    assert snap.service_level == pytest.approx(100 / 3)
    assert snap.abandoned_within == 1


def test_unknown_calls_and_queues_are_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    stats = LiveStats()
    with caplog.at_level(logging.WARNING, logger="minicc.queue.stats"):
        stats.apply(CallAnswered(queue="ghost", call_id="x", at=1.0, agent_id="a"))
    assert "undeclared queue 'ghost'" in caplog.text
    assert "not waiting" in caplog.text
    assert stats.snapshot(2.0).queues["ghost"].answered == 0


# -- against a recount from a generated call log --------------------------------------

outcomes = st.sampled_from(["answer", "abandon", "left", "wait", "callback-answer"])


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 120), outcomes), max_size=40))
def test_queue_counts_equal_a_recount_of_the_log(
    log: list[tuple[float, float, str]],
) -> None:
    threshold = 30.0
    stats = LiveStats()
    stats.add_queue("q", service_level_threshold=threshold)
    events: list[tuple[float, int, QueueEvent]] = []
    for n, (joined, wait, outcome) in enumerate(log):
        call_id = f"c{n}"
        end = joined + wait
        events.append((joined, 0, CallJoined(queue="q", call_id=call_id, at=joined)))
        if outcome == "answer":
            events.append((end, 2, CallAnswered(queue="q", call_id=call_id, at=end, agent_id="a")))
        elif outcome == "callback-answer":
            events.append((joined, 1, CallbackRequested(queue="q", call_id=call_id, at=joined)))
            events.append((end, 2, CallAnswered(queue="q", call_id=call_id, at=end, agent_id="a")))
        elif outcome == "abandon":
            events.append((end, 2, CallAbandoned(queue="q", call_id=call_id, at=end)))
        elif outcome == "left":
            events.append(
                (end, 2, CallLeft(queue="q", call_id=call_id, at=end, reason=LeaveReason.EMPTY))
            )
    for _, _, event in sorted(events, key=lambda item: (item[0], item[1])):
        stats.apply(event)
    now = 2000.0
    snap = stats.snapshot(now).queues["q"]

    answered = [w for _, w, o in log if o in ("answer", "callback-answer")]
    abandoned = [w for _, w, o in log if o == "abandon"]
    waiting = [j for j, _, o in log if o == "wait"]
    assert snap.offered == len(log)
    assert snap.answered == len(answered)
    assert snap.abandoned == len(abandoned)
    left = sum(o == "left" for *_, o in log)
    assert dict(snap.left) == ({LeaveReason.EMPTY: left} if left else {})
    assert snap.callbacks_requested == sum(o == "callback-answer" for *_, o in log)
    assert snap.waiting == len(waiting)
    assert snap.longest_wait == (max(now - j for j in waiting) if waiting else 0.0)
    # Waits are recomputed from the same event times the accumulator saw.
    answer_waits = [(j + w) - j for j, w, o in log if o in ("answer", "callback-answer")]
    abandon_waits = [(j + w) - j for j, w, o in log if o == "abandon"]
    within = sum(w <= threshold for w in answer_waits)
    short = sum(w <= threshold for w in abandon_waits)
    assert (snap.answered_within, snap.abandoned_within) == (within, short)
    denominator = len(answered) + len(abandoned) - short
    assert snap.service_level == (100.0 * within / denominator if denominator else None)
    assert snap.asa == (
        pytest.approx(sum(answer_waits) / len(answer_waits)) if answer_waits else None
    )
    assert snap.abandon_wait_max == max(abandon_waits, default=0.0)
