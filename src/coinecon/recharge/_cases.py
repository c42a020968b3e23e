"""How a dispute's case reverses the spend it is about."""

from __future__ import annotations

from datetime import datetime

from coinecon.errors import StorageError, ValidationError
from coinecon.ledger import entries
from coinecon.ledger.journal import AccountKey, Cause, Posting, TransactionKind, metadata_pairs
from coinecon.ports import UnitOfWork
from coinecon.recharge._context import Context
from coinecon.recharge.disputes import DISPUTED_KIND, Case


class Cases:
    """Reverses what a case upholds."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def reverse(
        self, uow: UnitOfWork, case: Case, staff: str, reason: str, key: str, now: datetime
    ) -> str:
        """Reverse the spend *case* disputes: its coins back in lots like
        those it took, and every other posting of it undone."""
        marker = uow.records.get(DISPUTED_KIND, case.transaction_id)
        if marker is None or marker.data["case"] != case.id:
            raise ValidationError(
                f"case {case.id} is not the case of transaction {case.transaction_id}"
            )
        disputed = uow.ledger.get(case.transaction_id)
        if disputed is None:
            raise StorageError(f"transaction {case.transaction_id} is missing")
        wallet = AccountKey.wallet(case.holder, self.ctx.unit)
        leg = disputed.posting_for(wallet)
        if (
            disputed.kind in (TransactionKind.PURCHASE, TransactionKind.BONUS)
            or leg is None
            or leg.amount > 0
        ):
            raise ValidationError(
                f"transaction {disputed.id} is a {disputed.kind.value}: only what took coins "
                "from the wallet is reversed here (a purchase goes back through its payment "
                "provider, whose refund event takes its coins)"
            )
        if disputed.kind not in (
            TransactionKind.SPEND,
            TransactionKind.GIFT,
            TransactionKind.ADJUSTMENT,
        ):
            raise ValidationError(f"a {disputed.kind.value} transaction is not reversed by a case")
        self.ctx.wallets.sweep_within(uow, wallet, now)
        grants, legs = self.ctx.restoring(uow, disputed, wallet, now)
        legs.append(Posting(AccountKey.issuance(self.ctx.unit), -leg.amount))
        credited = entries.record_credit(
            uow,
            transaction_id=self.ctx.new_id(),
            new_id=self.ctx.new_id,
            kind=TransactionKind.REVERSAL,
            wallet=wallet,
            grants=grants,
            now=now,
            key=key,
            cause=Cause("case", case.id),
            metadata=metadata_pairs(
                {"staff": staff, "reason": reason, "case": case.id, "reverses": disputed.id}
            ),
            also=legs,
        )
        return credited.transaction.id
