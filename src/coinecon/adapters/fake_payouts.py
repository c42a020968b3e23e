"""A deterministic, scriptable payout provider for tests, docs and demos.

:class:`FakePayoutGateway` implements :class:`~coinecon.creators.payout_gateway.PayoutGateway`
in memory. By default it sends every payout (the money is on its way); a
script per destination makes the next payouts settle at once, fail, or
raise. It plays the provider's side too: it settles, fails or reverses
payouts, each as a :class:`~coinecon.creators.payout_gateway.PayoutEvent`
with a numbered id, which the test hands to the economy::

    >>> from coinecon import Money
    >>> from coinecon.creators.payout_gateway import PayoutRequest
    >>> gateway = FakePayoutGateway()
    >>> gateway.script("acct_cat", Fail("account_closed"))
    >>> def send(payout_id):
    ...     return gateway.send(PayoutRequest(payout_id, "cat", "acct_cat",
    ...                                       Money("25.00", "USD"), "payout"))
    >>> send("po-1").reason, send("po-2").status.value
    ('account_closed', 'sent')
    >>> event = gateway.settle("po-2")
    >>> event.id, event.type.value, gateway.lookup("po-2").status.value
    ('pevt-0001', 'settled', 'settled')
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import final

import attrs

from coinecon.clock import Clock, SystemClock
from coinecon.creators.payout_gateway import (
    PayoutEvent,
    PayoutEventType,
    PayoutOutcome,
    PayoutRequest,
    PayoutStatus,
)
from coinecon.errors import InvalidTypeError, NotFoundError, ValidationError

__all__ = ["Fail", "FakePayoutGateway", "Raise", "Send", "Settle", "Step"]


@final
@attrs.frozen
class Send:
    """The payout is sent (it settles later)."""


@final
@attrs.frozen
class Settle:
    """The payout settles at once."""


@final
@attrs.frozen
class Fail:
    """The payout fails at once with *reason*."""

    reason: str = "destination_rejected"


@final
@attrs.frozen
class Raise:
    """The call raises *error*. With *sent*, the provider took the payout
    before the call failed: :meth:`lookup <FakePayoutGateway.lookup>` then
    says sent; otherwise the provider never saw it."""

    error: Exception = attrs.field(factory=lambda: TimeoutError("the provider did not answer"))
    sent: bool = False


Step = Send | Settle | Fail | Raise
"""One scripted answer of the fake payout provider."""


@attrs.define
class _Payout:
    request: PayoutRequest
    outcome: PayoutOutcome


class FakePayoutGateway:
    """A payout provider in memory; see the module's documentation.

    Args:
        clock: the time its events occur at (default: the system clock).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._scripts: dict[str, deque[Step]] = {}
        self._payouts: dict[str, _Payout] = {}
        self._references = itertools.count(1)
        self._event_ids = itertools.count(1)
        self.events: list[PayoutEvent] = []
        """Every event the provider emitted, in order."""
        self.calls = 0
        """How many times :meth:`send` was called (replays included)."""

    # -- the port -------------------------------------------------------------------

    def script(self, destination: str, *steps: Step) -> None:
        """Answer the next payouts to *destination* with *steps*, in order;
        then send again."""
        for step in steps:
            if not isinstance(step, Send | Settle | Fail | Raise):
                raise InvalidTypeError(f"a step is Send, Settle, Fail or Raise, got {step!r}")
        self._scripts.setdefault(destination, deque()).extend(steps)

    def send(self, request: PayoutRequest) -> PayoutOutcome:
        """Answer *request* by the script of its destination (send when none
        is left). A payout asked for again is answered as it stands now, and
        never paid twice."""
        self.calls += 1
        known = self._payouts.get(request.payout_id)
        if known is not None:
            if known.request != request:
                raise ValidationError(f"payout {request.payout_id} was asked with another request")
            return known.outcome
        queue = self._scripts.get(request.destination)
        step: Step = queue.popleft() if queue else Send()
        if isinstance(step, Raise):
            if step.sent:
                self._take(request, PayoutOutcome(PayoutStatus.SENT, self._reference()))
            raise step.error
        if isinstance(step, Fail):
            outcome = PayoutOutcome(PayoutStatus.FAILED, self._reference(), step.reason)
        elif isinstance(step, Settle):
            outcome = PayoutOutcome(PayoutStatus.SETTLED, self._reference())
        else:
            outcome = PayoutOutcome(PayoutStatus.SENT, self._reference())
        return self._take(request, outcome)

    def lookup(self, payout_id: str) -> PayoutOutcome | None:
        """The payout's outcome as it stands now, or ``None`` if never received."""
        known = self._payouts.get(payout_id)
        return None if known is None else known.outcome

    # -- the provider's side ----------------------------------------------------------

    def settle(self, payout_id: str) -> PayoutEvent:
        """A sent payout arrives."""
        payout = self._sent(payout_id)
        payout.outcome = PayoutOutcome(PayoutStatus.SETTLED, payout.outcome.reference)
        return self._emit(PayoutEventType.SETTLED, payout_id)

    def fail(self, payout_id: str, reason: str = "destination_rejected") -> PayoutEvent:
        """A sent payout fails on the way."""
        payout = self._sent(payout_id)
        payout.outcome = PayoutOutcome(PayoutStatus.FAILED, payout.outcome.reference, reason)
        return self._emit(PayoutEventType.FAILED, payout_id, reason)

    def reverse(self, payout_id: str, reason: str = "account_closed") -> PayoutEvent:
        """A sent or settled payout comes back."""
        payout = self._known(payout_id)
        if payout.outcome.status is PayoutStatus.FAILED:
            raise ValidationError(f"payout {payout_id} failed: nothing to reverse")
        payout.outcome = PayoutOutcome(PayoutStatus.FAILED, payout.outcome.reference, reason)
        return self._emit(PayoutEventType.REVERSED, payout_id, reason)

    def forget(self, payout_id: str) -> None:
        """Forget payout *payout_id*, as a long simulation does once no event
        of the provider's will follow it (its memory then stays flat): a
        later :meth:`lookup` says it was never received, and the same id
        sent again is a new payout. Forgetting an unknown id does nothing."""
        self._payouts.pop(payout_id, None)

    def payouts(self) -> Iterator[tuple[PayoutRequest, PayoutOutcome]]:
        """Every payout received, with its outcome now, in the order received."""
        for payout in self._payouts.values():
            yield payout.request, payout.outcome

    # -- helpers --------------------------------------------------------------------

    def _take(self, request: PayoutRequest, outcome: PayoutOutcome) -> PayoutOutcome:
        self._payouts[request.payout_id] = _Payout(request, outcome)
        return outcome

    def _reference(self) -> str:
        return f"fake-po-{next(self._references):04d}"

    def _known(self, payout_id: str) -> _Payout:
        payout = self._payouts.get(payout_id)
        if payout is None:
            raise NotFoundError(f"the fake provider never received payout {payout_id!r}")
        return payout

    def _sent(self, payout_id: str) -> _Payout:
        payout = self._known(payout_id)
        if payout.outcome.status is not PayoutStatus.SENT:
            raise ValidationError(f"payout {payout_id} is {payout.outcome.status.value}, not sent")
        return payout

    def _emit(
        self, kind: PayoutEventType, payout_id: str, reason: str | None = None
    ) -> PayoutEvent:
        event = PayoutEvent(
            id=f"pevt-{next(self._event_ids):04d}",
            type=kind,
            payout_id=payout_id,
            occurred_at=self._clock.now(),
            reason=reason,
        )
        self.events.append(event)
        return event
