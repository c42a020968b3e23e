"""A deterministic, scriptable payment provider for tests, docs and demos.

:class:`FakePaymentGateway` implements :class:`~coinecon.recharge.gateway.PaymentGateway`
in memory. By default it approves every charge; a script per payment method
makes the next charges decline, pend, raise or time out. It plays the
provider's side too: it settles or fails pending charges, refunds, charges
back and reverses chargebacks, each as a :class:`~coinecon.recharge.gateway.PaymentEvent`
with a numbered id, which the test hands to the economy (twice, late or out
of order, as it likes)::

    >>> from coinecon import Money
    >>> from coinecon.recharge import ChargeRequest, ChargeStatus
    >>> gateway = FakePaymentGateway()
    >>> gateway.script("pm_card", Decline("insufficient_funds"), Pend())
    >>> def charge(charge_id):
    ...     return gateway.charge(ChargeRequest(charge_id, "alice", Money("4.99", "USD"),
    ...                                         "pm_card", "500 coins"))
    >>> charge("p-1").reason, charge("p-2").status, charge("p-3").status
    ('insufficient_funds', <ChargeStatus.PENDING: 'pending'>, <ChargeStatus.APPROVED: 'approved'>)
    >>> event = gateway.settle("p-2")
    >>> event.id, event.type.value, gateway.lookup("p-2").status
    ('evt-0001', 'settled', <ChargeStatus.APPROVED: 'approved'>)
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import final

import attrs

from coinecon.clock import Clock, SystemClock
from coinecon.errors import InvalidTypeError, NotFoundError, ValidationError
from coinecon.money.money import Money
from coinecon.recharge.gateway import (
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    PaymentEvent,
    PaymentEventType,
)

__all__ = ["Approve", "Decline", "FakePaymentGateway", "Pend", "Raise", "Step"]


@final
@attrs.frozen
class Approve:
    """The charge is approved."""


@final
@attrs.frozen
class Decline:
    """The charge is declined with *reason*."""

    reason: str = "card_declined"


@final
@attrs.frozen
class Pend:
    """The charge is pending until :meth:`FakePaymentGateway.settle` or
    :meth:`FakePaymentGateway.fail`."""


@final
@attrs.frozen
class Raise:
    """The call raises *error*. With *charged*, the provider took the money
    before the call failed (a time-out after the charge): :meth:`lookup
    <FakePaymentGateway.lookup>` then says approved; otherwise the provider
    never saw the charge."""

    error: Exception = attrs.field(factory=lambda: TimeoutError("the provider did not answer"))
    charged: bool = False


Step = Approve | Decline | Pend | Raise
"""One scripted answer of the fake provider."""


@attrs.define
class _Charge:
    request: ChargeRequest
    outcome: ChargeOutcome


class FakePaymentGateway:
    """A payment provider in memory; see the module's documentation.

    Args:
        clock: the time its events occur at (default: the system clock).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._scripts: dict[str, deque[Step]] = {}
        self._charges: dict[str, _Charge] = {}
        self._references = itertools.count(1)
        self._event_ids = itertools.count(1)
        self.events: list[PaymentEvent] = []
        """Every event the provider emitted, in order."""
        self.calls = 0
        """How many times :meth:`charge` was called (replays included)."""

    # -- the port -----------------------------------------------------------------

    def script(self, payment_method: str, *steps: Step) -> None:
        """Answer the next charges to *payment_method* with *steps*, in order;
        then approve again."""
        for step in steps:
            if not isinstance(step, Approve | Decline | Pend | Raise):
                raise InvalidTypeError(f"a step is Approve, Decline, Pend or Raise, got {step!r}")
        self._scripts.setdefault(payment_method, deque()).extend(steps)

    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Answer *request* by the script of its payment method (approve when
        none is left). A charge asked for again is answered as it stands now,
        and never taken twice."""
        self.calls += 1
        known = self._charges.get(request.charge_id)
        if known is not None:
            if known.request != request:
                raise ValidationError(f"charge {request.charge_id} was asked with another request")
            return known.outcome
        queue = self._scripts.get(request.payment_method)
        step: Step = queue.popleft() if queue else Approve()
        if isinstance(step, Raise):
            if step.charged:
                self._take(request, ChargeOutcome(ChargeStatus.APPROVED, self._reference()))
            raise step.error
        if isinstance(step, Decline):
            outcome = ChargeOutcome(ChargeStatus.DECLINED, self._reference(), step.reason)
        elif isinstance(step, Pend):
            outcome = ChargeOutcome(ChargeStatus.PENDING, self._reference())
        else:
            outcome = ChargeOutcome(ChargeStatus.APPROVED, self._reference())
        return self._take(request, outcome)

    def lookup(self, charge_id: str) -> ChargeOutcome | None:
        """The charge's outcome as it stands now, or ``None`` if never received."""
        known = self._charges.get(charge_id)
        return None if known is None else known.outcome

    # -- the provider's side ----------------------------------------------------------

    def settle(self, charge_id: str) -> PaymentEvent:
        """A pending charge goes through."""
        charge = self._pending(charge_id)
        charge.outcome = ChargeOutcome(ChargeStatus.APPROVED, charge.outcome.reference)
        return self._emit(PaymentEventType.SETTLED, charge_id)

    def fail(self, charge_id: str, reason: str = "payment_failed") -> PaymentEvent:
        """A pending charge does not go through."""
        charge = self._pending(charge_id)
        charge.outcome = ChargeOutcome(ChargeStatus.DECLINED, charge.outcome.reference, reason)
        return self._emit(PaymentEventType.FAILED, charge_id, reason=reason)

    def refund(self, charge_id: str, amount: Money | None = None) -> PaymentEvent:
        """Give back *amount* (default: the whole charge)."""
        return self._money_event(PaymentEventType.REFUNDED, charge_id, amount, None)

    def charge_back(
        self, charge_id: str, amount: Money | None = None, reason: str = "fraudulent"
    ) -> PaymentEvent:
        """The buyer's bank takes back *amount* (default: the whole charge)."""
        return self._money_event(PaymentEventType.CHARGED_BACK, charge_id, amount, reason)

    def reverse_chargeback(self, charge_id: str, amount: Money | None = None) -> PaymentEvent:
        """A chargeback of *amount* (default: the whole charge) is won."""
        return self._money_event(PaymentEventType.CHARGEBACK_REVERSED, charge_id, amount, None)

    def forget(self, charge_id: str) -> None:
        """Forget charge *charge_id*, as a long simulation does once no event
        of the provider's will follow it (its memory then stays flat): a
        later :meth:`lookup` says it was never received, and the same id
        asked again is a new charge. Forgetting an unknown id does nothing."""
        self._charges.pop(charge_id, None)

    def charges(self) -> Iterator[tuple[ChargeRequest, ChargeOutcome]]:
        """Every charge received, with its outcome now, in the order received."""
        for charge in self._charges.values():
            yield charge.request, charge.outcome

    # -- helpers ----------------------------------------------------------------------

    def _take(self, request: ChargeRequest, outcome: ChargeOutcome) -> ChargeOutcome:
        self._charges[request.charge_id] = _Charge(request, outcome)
        return outcome

    def _reference(self) -> str:
        return f"fake-ch-{next(self._references):04d}"

    def _known(self, charge_id: str) -> _Charge:
        charge = self._charges.get(charge_id)
        if charge is None:
            raise NotFoundError(f"the fake provider never received charge {charge_id!r}")
        return charge

    def _pending(self, charge_id: str) -> _Charge:
        charge = self._known(charge_id)
        if charge.outcome.status is not ChargeStatus.PENDING:
            raise ValidationError(
                f"charge {charge_id} is {charge.outcome.status.value}, not pending"
            )
        return charge

    def _money_event(
        self,
        kind: PaymentEventType,
        charge_id: str,
        amount: Money | None,
        reason: str | None,
    ) -> PaymentEvent:
        charge = self._known(charge_id)
        return self._emit(
            kind,
            charge_id,
            amount=charge.request.amount if amount is None else amount,
            reason=reason,
        )

    def _emit(
        self,
        kind: PaymentEventType,
        charge_id: str,
        *,
        amount: Money | None = None,
        reason: str | None = None,
    ) -> PaymentEvent:
        event = PaymentEvent(
            id=f"evt-{next(self._event_ids):04d}",
            type=kind,
            charge_id=charge_id,
            occurred_at=self._clock.now(),
            amount=amount,
            reason=reason,
        )
        self.events.append(event)
        return event
