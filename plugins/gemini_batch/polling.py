"""The one polling core: what to do after each look at a batch job (a job read, or an error).

Every wait of the package runs the decisions of :class:`Poller`: the trigger's async loop
(:func:`drive_async`), the operator's non-deferrable wait (:func:`drive_sync`), the sensor's
``poke`` (one observation per poke) and :func:`retry_read` (the read-with-backoff helper). The
drivers only sleep, read, rebuild the client, log and end as a decision tells them.

Invariants:
- Only a terminal state, the ``error_budget + 1``-th consecutive transient error, a 404, a
  non-transient error or the wall-clock ``deadline`` ends a wait. A job read resets the count.
- 429/5xx/timeouts/connection errors back off exponentially with jitter (:class:`Backoff`);
  a 401 rebuilds the client from its connection (credentials may have rotated), backs off the
  same way and counts toward the budget, so a key that stays wrong still ends the wait.
- No wait sleeps past the deadline; at the deadline the job is read once more, and only a
  job still not terminal then times out.
- A progress line is logged when it changes; PAUSED is warned about once when it starts.
- Randomness comes from :func:`make_rng`, time from :func:`now`, sleeping from :func:`sleep` /
  :func:`asleep`: tests replace these four and the delays become exact.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, TypeVar

from gemini_batch.api_errors import error_kind
from gemini_batch.exceptions import GeminiBatchJobNotFound, GeminiBatchPollingError, GeminiBatchTimeout
from gemini_batch.states import (
    PAUSED,
    Outcome,
    counts_of,
    normalize_state,
    outcome_of,
    progress_line,
    short_state,
)

T = TypeVar("T")

LogLevel = Literal["info", "warning", "error"]
WaitReason = Literal["first_poll", "poll", "backoff"]
FailReason = Literal["timeout", "budget", "not_found", "fatal"]

#: Appended to the messages of a wait that gives up while the job goes on.
KEEPS_RUNNING = " The job keeps running; a retry of the task re-attaches to it."


def now() -> float:
    """Wall-clock seconds (a wall clock: a trigger may move to another process)."""
    return time.time()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


async def asleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def make_rng() -> random.Random:
    """The source of jitter of a new :class:`Poller`."""
    return random.Random()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, within a budget of consecutive failures.

    :param base: seconds before the first retry (before jitter).
    :param cap: the longest single wait, seconds.
    :param budget: consecutive transient failures tolerated; one more ends the wait.
    """

    base: float = 2.0
    cap: float = 120.0
    budget: int = 8

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure: half fixed, half random."""
        ceiling = min(self.cap, self.base * (2 ** max(failures - 1, 0)))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def exhausted(self, failures: int) -> bool:
        return failures > self.budget


@dataclass(frozen=True)
class LogLine:
    """A line a driver logs on the poller's behalf."""

    level: LogLevel
    message: str


@dataclass(frozen=True)
class Wait:
    """Sleep ``seconds``, then read again. ``rebuild_client``: drop the cached client first (401)."""

    seconds: float
    reason: WaitReason
    rebuild_client: bool = False
    logs: tuple[LogLine, ...] = ()


@dataclass(frozen=True)
class Done:
    """The job is terminal: ``outcome`` says how it ended."""

    job: Any
    outcome: Outcome
    state: str
    message: str
    logs: tuple[LogLine, ...] = ()


@dataclass(frozen=True)
class Fail:
    """Stop waiting. ``state`` is the last state seen (None if never read); ``error`` the cause."""

    reason: FailReason
    message: str
    state: str | None = None
    error: BaseException | None = field(default=None, compare=False)
    logs: tuple[LogLine, ...] = ()


Decision = Wait | Done | Fail


@dataclass
class Poller:
    """The decisions of one wait. Feed it each observation; it says what to do next.

    :param subject: how messages name what is waited on, e.g. ``Batch job batches/123``.
    :param poll_interval: seconds between reads of a job that is not terminal (+-10% jitter).
    :param deadline: wall-clock instant (epoch seconds) after which the wait times out, or None.
    :param error_budget: consecutive transient errors tolerated; one more ends the wait.
    :param backoff_base: seconds before the first retry after a transient error (before jitter).
    :param backoff_cap: the longest backoff; never below ``poll_interval``.
    :param hint: appended to the messages of a wait that gives up (timeout, budget).
    """

    subject: str
    poll_interval: float = 30.0
    deadline: float | None = None
    error_budget: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 120.0
    hint: str = KEEPS_RUNNING
    rng: random.Random = field(default_factory=lambda: make_rng())
    failures: int = 0
    last_line: str | None = None
    last_state: str | None = None

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            base=self.backoff_base, cap=max(self.backoff_cap, self.poll_interval), budget=self.error_budget
        )

    def start(self, now: float, *, spread: bool) -> Wait | Fail:
        """The wait before the first read: a random part of one interval when ``spread`` (the caller
        has just read the job; triggers restarted together must not poll in lockstep), else none."""
        seconds = self.rng.uniform(0, self.poll_interval) if spread else 0.0
        return self._wait(seconds, "first_poll", now)

    def observe(self, observation: Any, now: float) -> Decision:
        """What to do after a read: ``observation`` is the job read, or the exception the read raised."""
        if isinstance(observation, BaseException):
            return self.observe_error(observation, now)
        return self.observe_job(observation, now)

    def observe_job(self, job: Any, now: float) -> Done | Wait | Fail:
        self.failures = 0
        state = normalize_state(getattr(job, "state", None))
        counts = counts_of(job)
        line = progress_line(state, counts)
        logs: list[LogLine] = []
        if line != self.last_line:
            logs.append(LogLine("info", f"{self.subject}: {line}"))
            self.last_line = line
        if state == PAUSED and self.last_state != PAUSED:
            logs.append(
                LogLine(
                    "warning",
                    f"{self.subject} is PAUSED; still waiting (the pause counts toward the timeout)",
                )
            )
        self.last_state = state
        outcome = outcome_of(state, counts)
        if outcome is not None:
            message = f"{self.subject} ended {line}"
            error_message = getattr(getattr(job, "error", None), "message", None)
            if error_message:
                message += f": {error_message}"
            return Done(job, outcome, state, message, tuple(logs))
        return self._wait(self.poll_interval * self.rng.uniform(0.9, 1.1), "poll", now, logs)

    def observe_error(self, exc: BaseException, now: float) -> Wait | Fail:
        kind = error_kind(exc)
        text = f"{type(exc).__name__}: {exc}"
        if kind == "not_found":
            message = (
                str(exc)
                if isinstance(exc, GeminiBatchJobNotFound)
                else f"{self.subject} was not found: {text}"
            )
            return Fail("not_found", message, self.last_state, exc)
        if kind == "fatal":
            message = f"{self.subject}: polling failed: {text}"
            return Fail("fatal", message, self.last_state, exc, (LogLine("error", message),))
        self.failures += 1
        backoff = self.backoff
        if backoff.exhausted(self.failures):
            message = (
                f"{self.subject}: gave up after {self.failures} consecutive transient errors "
                f"(error_budget={self.error_budget}); last: {text}.{self.hint}"
            )
            return Fail("budget", message, self.last_state, exc, (LogLine("error", message),))
        delay = backoff.delay(self.failures, self.rng)
        if kind == "auth":
            line = (
                f"{self.subject}: unauthenticated ({text}); rebuilding the client from its connection "
                f"({self.failures}/{self.error_budget}), next try in {delay:.1f} s"
            )
        else:
            line = (
                f"{self.subject}: transient error {text} ({self.failures}/{self.error_budget}), "
                f"next try in {delay:.1f} s"
            )
        return self._wait(delay, "backoff", now, [LogLine("warning", line)], rebuild_client=kind == "auth")

    def _wait(
        self,
        seconds: float,
        reason: WaitReason,
        now: float,
        logs: list[LogLine] | None = None,
        rebuild_client: bool = False,
    ) -> Wait | Fail:
        logs = list(logs or ())
        if self.deadline is not None:
            remaining = self.deadline - now
            if remaining <= 0:
                still = short_state(self.last_state) if self.last_state else "not terminal"
                message = f"{self.subject} is still {still} at the deadline.{self.hint}"
                logs.append(LogLine("warning", message))
                return Fail("timeout", message, self.last_state, None, tuple(logs))
            seconds = min(seconds, remaining)
        return Wait(max(seconds, 0.0), reason, rebuild_client, tuple(logs))


def emit(log: Any, logs: tuple[LogLine, ...]) -> None:
    """Log a decision's lines (no %-formatting: messages may hold a '%')."""
    for line in logs:
        getattr(log, line.level)(line.message)


def drive_sync(
    poller: Poller, read: Callable[[], Any], *, rebuild: Callable[[], None], log: Any, spread: bool = False
) -> Done | Fail:
    """Run a wait to its end in a worker: sleep, read, decide, until Done or Fail."""
    decision: Decision = poller.start(now(), spread=spread)
    while isinstance(decision, Wait):
        emit(log, decision.logs)
        if decision.rebuild_client:
            rebuild()
        sleep(decision.seconds)
        try:
            observation = read()
        except Exception as exc:
            observation = exc
        decision = poller.observe(observation, now())
    emit(log, decision.logs)
    return decision


async def drive_async(
    poller: Poller,
    read: Callable[[], Awaitable[Any]],
    *,
    rebuild: Callable[[], None],
    log: Any,
    spread: bool = True,
) -> Done | Fail:
    """As :func:`drive_sync`, in an event loop (the trigger)."""
    decision: Decision = poller.start(now(), spread=spread)
    while isinstance(decision, Wait):
        emit(log, decision.logs)
        if decision.rebuild_client:
            rebuild()
        await asleep(decision.seconds)
        try:
            observation = await read()
        except Exception as exc:
            observation = exc
        decision = poller.observe(observation, now())
    emit(log, decision.logs)
    return decision


def failure_exception(fail: Fail) -> Exception:
    """The exception a task raises for a failed wait: the job's own 404, a timeout, or a polling error."""
    if fail.reason == "not_found" and isinstance(fail.error, GeminiBatchJobNotFound):
        return fail.error
    if fail.reason == "timeout":
        return GeminiBatchTimeout(fail.message)
    return GeminiBatchPollingError(fail.message)


def raise_failure(fail: Fail) -> NoReturn:
    """Raise :func:`failure_exception` of a failed wait, chained to the error that caused it."""
    error = failure_exception(fail)
    if error is fail.error:
        raise error
    raise error from fail.error


def retry_read(
    log: Any,
    what: str,
    call: Callable[[], T],
    budget: int = 8,
    *,
    rebuild: Callable[[], None] | None = None,
) -> T:
    """Run a read-only call, backing off on transient errors (429, 5xx, timeouts, 401) within ``budget``.

    A non-transient error (404, 400...) is raised as is. Never use it for ``create``: a create
    whose response was lost may have made a job.

    :param log: where the backoff lines go.
    :param what: what the call does, for messages (``Reading batch job X``).
    :param call: the read.
    :param budget: consecutive transient errors tolerated; one more raises GeminiBatchPollingError.
    :param rebuild: called before retrying after a 401 (e.g. ``hook.invalidate``).
    """
    poller = Poller(subject=what, error_budget=budget, hint="")
    while True:
        try:
            return call()
        except Exception as exc:
            decision = poller.observe_error(exc, now())
            if isinstance(decision, Fail):
                if decision.reason in ("not_found", "fatal"):
                    raise
                emit(log, decision.logs)
                raise GeminiBatchPollingError(decision.message) from exc
            emit(log, decision.logs)
            if decision.rebuild_client and rebuild is not None:
                rebuild()
            sleep(decision.seconds)
