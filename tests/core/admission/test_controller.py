from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import pytest

from core.admission.concurrency import FixedLimit
from core.admission.controller import AdmissionController, Shed, Ticket
from core.plugin_host.priority import Priority

if TYPE_CHECKING:
    from tests.support.admission import FakeClock

CRITICAL, NORMAL, SHEDDABLE = Priority.CRITICAL, Priority.NORMAL, Priority.SHEDDABLE


class RecordingLimit:
    """A limit the test sets by hand, which records every sample it is given."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.samples: list[tuple[float, int, bool]] = []

    def on_sample(self, rtt: float, inflight: int, dropped: bool) -> None:
        self.samples.append((rtt, inflight, dropped))


def make_controller(clock: FakeClock, limit: int = 1, **config: Any) -> AdmissionController:
    config.setdefault("critical_reserve", 0.0)
    return AdmissionController(limit=FixedLimit(limit=limit), clock=clock, **config)


def acquire_now(coroutine: Coroutine[Any, Any, Ticket]) -> Ticket:
    """Run an ``acquire`` that must complete without suspending even once."""
    with pytest.raises(StopIteration) as finished:
        coroutine.send(None)
    ticket: Ticket = finished.value.value
    return ticket


def wait_for_slot(
    controller: AdmissionController, priority: Priority, **options: Any
) -> asyncio.Task[Ticket]:
    task = asyncio.create_task(controller.acquire(priority, **options))
    # Mark a Shed as seen, so that a test failing before it looks does not also log
    # "Task exception was never retrieved".
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


async def started(task: asyncio.Task[Ticket]) -> Ticket:
    """The ticket of a waiter that must have started by now."""
    await settle()
    assert task.done(), "the waiter is still waiting"
    return task.result()


async def shed_error(task: asyncio.Task[Ticket]) -> Shed:
    """The refusal of a request that must have been shed by now."""
    await settle()
    assert task.done(), "the waiter is still waiting"
    with pytest.raises(Shed) as shed:
        task.result()
    return shed.value


async def shed_reason(task: asyncio.Task[Ticket]) -> str:
    return (await shed_error(task)).reason


async def form_standing_queue(controller: AdmissionController, clock: FakeClock) -> Ticket:
    """Drive a one-slot controller until CoDel sees a standing queue; return the held slot."""
    holder = acquire_now(controller.acquire(NORMAL))
    clock.advance(0.10)
    first = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.05)
    stale = wait_for_slot(controller, NORMAL)
    await settle()
    holder.release()  # the first waiter waited 50 ms: longer than the target, within the interval
    await settle()
    clock.advance(0.10)
    fresh = wait_for_slot(controller, NORMAL)
    await settle()
    (await started(first)).release()  # a whole interval without a wait under the target: standing
    await settle()
    assert controller.queue_standing
    assert await shed_reason(stale) == "codel"
    return await started(fresh)


# -- starting -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fast_path_admits_up_to_the_limit_without_suspending(clock: FakeClock) -> None:
    controller = make_controller(clock, limit=3)
    tickets = [acquire_now(controller.acquire(NORMAL)) for _ in range(3)]
    over = wait_for_slot(controller, NORMAL)
    await settle()
    assert [t.priority for t in tickets] == [NORMAL] * 3
    assert (controller.total_inflight, controller.queue_length(), over.done()) == (3, 1, False)


@pytest.mark.asyncio
async def test_waiter_starts_when_a_slot_frees(clock: FakeClock) -> None:
    waits: list[tuple[Priority, float]] = []
    controller = make_controller(clock, on_wait=lambda p, w: waits.append((p, w)))
    holder = acquire_now(controller.acquire(NORMAL))
    waiter = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.003)
    holder.release()
    ticket = await started(waiter)
    assert ticket.priority is NORMAL
    assert (controller.total_inflight, controller.queue_length()) == (1, 0)
    assert waits == [(NORMAL, pytest.approx(0.003))]


@pytest.mark.asyncio
async def test_higher_priority_waiters_start_first_whatever_their_arrival(
    clock: FakeClock,
) -> None:
    controller = make_controller(clock)
    holder = acquire_now(controller.acquire(NORMAL))
    waiters = {p: wait_for_slot(controller, p) for p in (SHEDDABLE, NORMAL, CRITICAL)}
    await settle()
    started = []
    ticket = holder
    for _ in range(3):
        ticket.release()
        await settle()
        done = [p for p, task in waiters.items() if task.done() and p not in started]
        started.extend(done)
        ticket = waiters[done[0]].result()
    assert started == [CRITICAL, NORMAL, SHEDDABLE]


@pytest.mark.asyncio
async def test_critical_reserve_keeps_slots_that_only_critical_may_take(
    clock: FakeClock,
) -> None:
    controller = make_controller(clock, limit=10, critical_reserve=0.2)
    for _ in range(8):
        acquire_now(controller.acquire(NORMAL))
    normal = wait_for_slot(controller, NORMAL)
    sheddable = wait_for_slot(controller, SHEDDABLE)
    await settle()
    assert (normal.done(), sheddable.done()) == (False, False)
    for _ in range(2):
        acquire_now(controller.acquire(CRITICAL))
    assert (controller.inflight(NORMAL), controller.inflight(CRITICAL)) == (8, 2)


@pytest.mark.asyncio
async def test_a_newcomer_does_not_overtake_a_waiter_of_its_priority(clock: FakeClock) -> None:
    limit = RecordingLimit(1)
    controller = AdmissionController(limit=limit, clock=clock, critical_reserve=0.0)
    holder = acquire_now(controller.acquire(NORMAL))
    waiter = wait_for_slot(controller, NORMAL)
    await settle()
    limit.limit = 2  # a slot is free, but nothing has started the waiter yet
    newcomer = wait_for_slot(controller, NORMAL)
    await settle()
    assert (waiter.done(), newcomer.done()) == (False, False)
    controller.sweep()
    await settle()
    assert (waiter.done(), newcomer.done()) == (True, False)
    holder.release()
    await settle()
    assert newcomer.done()


@pytest.mark.asyncio
async def test_saturated_storage_caps_lower_classes_at_half_the_limit(clock: FakeClock) -> None:
    controller = make_controller(clock, limit=10, critical_reserve=0.2)
    controller.set_pressure(1.0)
    for _ in range(5):
        acquire_now(controller.acquire(NORMAL))
    normal = wait_for_slot(controller, NORMAL)
    for _ in range(5):
        acquire_now(controller.acquire(CRITICAL))
    await settle()
    assert (normal.done(), controller.total_inflight) == (False, 10)


@pytest.mark.asyncio
async def test_easing_pressure_starts_waiting_lower_class_requests(clock: FakeClock) -> None:
    controller = make_controller(clock, limit=10, critical_reserve=0.2)
    controller.set_pressure(1.0)
    for _ in range(5):
        acquire_now(controller.acquire(NORMAL))
    normal = wait_for_slot(controller, NORMAL)
    await settle()
    assert normal.done() is False
    controller.set_pressure(0.0)  # the share is back to 8 of 10
    await settle()
    assert normal.done()


# -- a full queue ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_full_queue_evicts_the_newest_waiter_of_the_lowest_class(clock: FakeClock) -> None:
    shed: list[tuple[str, Priority]] = []
    controller = make_controller(clock, queue_capacity=3, on_shed=lambda r, p: shed.append((r, p)))
    acquire_now(controller.acquire(NORMAL))
    old_sheddable = wait_for_slot(controller, SHEDDABLE)
    new_sheddable = wait_for_slot(controller, SHEDDABLE)
    normal = wait_for_slot(controller, NORMAL)
    await settle()
    critical = wait_for_slot(controller, CRITICAL)
    await settle()
    assert await shed_reason(new_sheddable) == "queue_full"
    assert (old_sheddable.done(), normal.done(), critical.done()) == (False, False, False)
    assert shed == [("queue_full", SHEDDABLE)]
    assert controller.queue_length() == 3


@pytest.mark.asyncio
async def test_full_queue_sheds_a_newcomer_with_no_lower_waiter(clock: FakeClock) -> None:
    shed: list[tuple[str, Priority]] = []
    controller = make_controller(clock, queue_capacity=2, on_shed=lambda r, p: shed.append((r, p)))
    acquire_now(controller.acquire(NORMAL))
    normal = wait_for_slot(controller, NORMAL)
    critical = wait_for_slot(controller, CRITICAL)
    late_normal = wait_for_slot(controller, NORMAL)
    refused = await shed_error(late_normal)
    assert (refused.reason, refused.priority, refused.retry_after) == ("queue_full", NORMAL, 4.0)
    assert (normal.done(), critical.done()) == (False, False)
    assert shed == [("queue_full", NORMAL)]


# -- CoDel ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_codel_sheds_a_stale_waiter_once_a_standing_queue_forms(clock: FakeClock) -> None:
    controller = make_controller(clock)
    fresh = await form_standing_queue(controller, clock)
    assert (fresh.priority, controller.total_inflight) == (NORMAL, 1)


@pytest.mark.asyncio
async def test_requests_admitted_at_once_count_as_zero_waits_for_codel(
    clock: FakeClock,
) -> None:
    controller = make_controller(clock)
    holder = acquire_now(controller.acquire(NORMAL))  # a zero wait in the first interval
    first = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.05)
    holder.release()
    first_ticket = await started(first)
    clock.advance(0.10)
    second = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.05)
    first_ticket.release()  # the interval that just ended saw a zero wait: no standing queue
    assert (await started(second)).priority is NORMAL
    assert not controller.queue_standing


@pytest.mark.asyncio
async def test_waiters_start_newest_first_while_the_queue_stands(clock: FakeClock) -> None:
    controller = make_controller(clock)
    ticket = await form_standing_queue(controller, clock)
    waiters = [wait_for_slot(controller, NORMAL) for _ in range(3)]
    await settle()
    order = []
    for _ in range(3):
        ticket.release()
        await settle()
        index = next(i for i, w in enumerate(waiters) if w.done() and i not in order)
        order.append(index)
        ticket = waiters[index].result()
    assert order == [2, 1, 0]


@pytest.mark.asyncio
async def test_waiters_start_oldest_first_without_a_standing_queue(clock: FakeClock) -> None:
    controller = make_controller(clock)
    ticket = acquire_now(controller.acquire(NORMAL))
    waiters = [wait_for_slot(controller, NORMAL) for _ in range(3)]
    await settle()
    order = []
    for _ in range(3):
        ticket.release()
        await settle()
        index = next(i for i, w in enumerate(waiters) if w.done() and i not in order)
        order.append(index)
        ticket = waiters[index].result()
    assert order == [0, 1, 2]
    assert not controller.queue_standing


@pytest.mark.asyncio
async def test_sweep_sheds_waits_over_the_target_while_the_queue_stands(
    clock: FakeClock,
) -> None:
    controller = make_controller(clock)
    await form_standing_queue(controller, clock)
    waiter = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.004)
    controller.sweep()
    await settle()
    assert waiter.done() is False
    clock.advance(0.002)
    controller.sweep()
    assert await shed_reason(waiter) == "codel"


@pytest.mark.asyncio
async def test_sweep_sheds_waits_over_the_interval_without_a_standing_queue(
    clock: FakeClock,
) -> None:
    controller = make_controller(clock)
    acquire_now(controller.acquire(NORMAL))
    waiter = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.099)
    controller.sweep()
    await settle()
    assert waiter.done() is False
    clock.advance(0.002)
    controller.sweep()
    assert await shed_reason(waiter) == "codel"
    assert controller.queue_length() == 0


# -- deadlines and departed clients ----------------------------------------------------------


@pytest.mark.asyncio
async def test_waiter_past_its_deadline_is_shed_instead_of_started(clock: FakeClock) -> None:
    controller = make_controller(clock)
    holder = acquire_now(controller.acquire(NORMAL))
    late = wait_for_slot(controller, NORMAL, deadline=clock() + 0.02)
    on_time = wait_for_slot(controller, NORMAL)
    await settle()
    clock.advance(0.03)
    holder.release()
    assert await shed_reason(late) == "deadline"
    assert (await started(on_time)).priority is NORMAL


@pytest.mark.asyncio
async def test_request_arriving_past_its_deadline_is_shed_at_once(clock: FakeClock) -> None:
    controller = make_controller(clock)
    acquire_now(controller.acquire(NORMAL))
    refused = await shed_error(wait_for_slot(controller, NORMAL, deadline=clock()))
    assert (refused.reason, refused.retry_after) == ("deadline", 1.0)
    assert controller.queue_length() == 0


@pytest.mark.asyncio
async def test_waiter_whose_client_left_is_shed_instead_of_started(clock: FakeClock) -> None:
    controller = make_controller(clock)
    holder = acquire_now(controller.acquire(NORMAL))
    gone = wait_for_slot(controller, NORMAL, is_cancelled=lambda: True)
    present = wait_for_slot(controller, NORMAL, is_cancelled=lambda: False)
    await settle()
    holder.release()
    assert await shed_reason(gone) == "disconnected"
    assert (await started(present)).priority is NORMAL


@pytest.mark.asyncio
async def test_sweeper_task_sheds_departed_and_expired_waiters(clock: FakeClock) -> None:
    shed: list[tuple[str, Priority]] = []
    controller = make_controller(clock, on_shed=lambda r, p: shed.append((r, p)))
    acquire_now(controller.acquire(NORMAL))
    client_gone = False
    departed = wait_for_slot(controller, SHEDDABLE, is_cancelled=lambda: client_gone)
    expiring = wait_for_slot(controller, NORMAL, deadline=clock() + 0.01)
    sweeper = asyncio.create_task(controller.run_sweeper(period=0))
    await settle()
    assert (departed.done(), expiring.done()) == (False, False)
    client_gone = True
    clock.advance(0.01)
    await settle()
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    assert await shed_reason(departed) == "disconnected"
    assert await shed_reason(expiring) == "deadline"
    assert sorted(shed) == [("deadline", NORMAL), ("disconnected", SHEDDABLE)]


@pytest.mark.asyncio
async def test_cancelled_waiter_leaves_the_queue(clock: FakeClock) -> None:
    controller = make_controller(clock)
    holder = acquire_now(controller.acquire(NORMAL))
    cancelled = wait_for_slot(controller, NORMAL)
    behind = wait_for_slot(controller, NORMAL)
    await settle()
    cancelled.cancel()
    await settle()
    assert controller.queue_length() == 1
    holder.release()
    assert (await started(behind)).priority is NORMAL


@pytest.mark.asyncio
async def test_slot_granted_to_a_task_cancelled_before_it_ran_is_freed(clock: FakeClock) -> None:
    limit = RecordingLimit(1)
    controller = AdmissionController(limit=limit, clock=clock, critical_reserve=0.0)
    holder = acquire_now(controller.acquire(NORMAL))
    waiter = wait_for_slot(controller, NORMAL)
    await settle()
    holder.release()
    waiter.cancel()  # the slot is granted, but the task has not resumed yet
    await settle()
    assert waiter.cancelled()
    assert controller.total_inflight == 0
    assert len(limit.samples) == 1  # only the holder's: the cancelled work never ran


# -- releasing ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_release_is_idempotent(clock: FakeClock) -> None:
    limit = RecordingLimit(2)
    controller = AdmissionController(limit=limit, clock=clock, critical_reserve=0.0)
    first = acquire_now(controller.acquire(NORMAL))
    acquire_now(controller.acquire(NORMAL))
    first.release()
    first.release(dropped=True)
    assert controller.total_inflight == 1
    assert limit.samples == [(0.0, 1, False)]


@pytest.mark.asyncio
async def test_limit_algorithm_gets_run_time_inflight_at_start_and_drop(clock: FakeClock) -> None:
    limit = RecordingLimit(5)
    controller = AdmissionController(limit=limit, clock=clock, critical_reserve=0.0)
    first = acquire_now(controller.acquire(NORMAL))
    second = acquire_now(controller.acquire(CRITICAL))
    clock.advance(0.25)
    first.release()
    clock.advance(0.25)
    second.release(dropped=True)
    assert limit.samples == [(0.25, 1, False), (0.5, 2, True)]


@pytest.mark.asyncio
async def test_ticket_as_context_manager_counts_an_escaping_exception_as_a_drop(
    clock: FakeClock,
) -> None:
    limit = RecordingLimit(5)
    controller = AdmissionController(limit=limit, clock=clock, critical_reserve=0.0)
    with acquire_now(controller.acquire(NORMAL)):
        pass
    with pytest.raises(RuntimeError), acquire_now(controller.acquire(NORMAL)):
        raise RuntimeError("handler failed")
    assert [dropped for _, _, dropped in limit.samples] == [False, True]
    assert controller.total_inflight == 0


# -- hints and configuration -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_retry_after_grows_with_storage_pressure(clock: FakeClock) -> None:
    controller = make_controller(clock)
    acquire_now(controller.acquire(CRITICAL))
    controller.set_pressure(0.5)
    refused = await shed_error(wait_for_slot(controller, NORMAL, deadline=clock()))
    assert refused.retry_after == 2.0


def test_stats_report_the_limit_and_empty_queues(clock: FakeClock) -> None:
    controller = make_controller(clock, limit=7)
    assert controller.current_limit == 7
    assert [controller.queue_length(p) for p in Priority] == [0, 0, 0]
    assert [controller.inflight(p) for p in Priority] == [0, 0, 0]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"queue_capacity": -1}, "queue_capacity"),
        ({"critical_reserve": 1.0}, "critical_reserve"),
        ({"critical_reserve": -0.1}, "critical_reserve"),
        ({"codel_target": 0.2, "codel_interval": 0.1}, "codel_target"),
    ],
)
def test_invalid_configuration_is_rejected(
    clock: FakeClock, config: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_controller(clock, **config)
