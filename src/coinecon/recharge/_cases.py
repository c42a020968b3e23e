"""How a dispute's case reverses the spend it is about."""

from __future__ import annotations

from datetime import datetime

from coinecon.errors import NotFoundError, StorageError, ValidationError
from coinecon.ledger import entries
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Cause,
    Metadata,
    Posting,
    Transaction,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import LotOrigin
from coinecon.ports import UnitOfWork
from coinecon.recharge._context import Context
from coinecon.recharge.disputes import DISPUTED_KIND, KIND, Case, CaseEntry, CaseStatus
from coinecon.records import Record


class Cases:
    """Opens and moves cases, reverses what one upholds, and adjusts wallets."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def open(
        self, uow: UnitOfWork, holder: str, transaction_id: str, note: str, now: datetime
    ) -> Case:
        """Store a new case: *holder* disputes *transaction_id*."""
        transaction = uow.ledger.get(transaction_id)
        if transaction is None:
            raise NotFoundError(f"no transaction {transaction_id!r}")
        if transaction.posting_for(AccountKey.wallet(holder, self.ctx.unit)) is None:
            raise ValidationError(f"transaction {transaction_id} did not touch {holder}'s wallet")
        case = Case(
            id=self.ctx.new_id(),
            holder=holder,
            transaction_id=transaction_id,
            status=CaseStatus.OPEN,
            opened_at=now,
            trail=(CaseEntry(now, holder, "reported", note),),
        )
        # One case at a time per transaction, and none after one upheld: a
        # spend is reversed once.
        marker = uow.records.get(DISPUTED_KIND, transaction_id)
        if marker is None:
            uow.records.add(
                Record.new(DISPUTED_KIND, transaction_id, holder, now, {"case": case.id})
            )
        else:
            earlier = self.ctx.case(uow, marker.data["case"])
            if earlier.status is not CaseStatus.REJECTED:
                raise ValidationError(
                    f"transaction {transaction_id} is disputed already: case {earlier.id} "
                    f"is {earlier.status.value}"
                )
            uow.records.update(marker.changed({"case": case.id}))
        uow.records.add(Record.new(KIND, case.id, holder, now, case.to_data()))
        return case

    def step(
        self,
        uow: UnitOfWork,
        case_id: str,
        staff: str,
        said: str,
        action: str,
        reverse: bool | None,
        key: str,
        now: datetime,
    ) -> Case:
        """Move a case: under review (*reverse* ``None``), or closed, by a
        reversal or a rejection; store it."""
        record = uow.records.get(KIND, case_id)
        if record is None:
            raise NotFoundError(f"no case {case_id!r}")
        case = Case.from_record(record)
        if case.status.closed:
            raise ValidationError(f"case {case_id} is {case.status.value} already")
        entry = CaseEntry(now, staff, action, said)
        if reverse is None:
            if case.status is not CaseStatus.OPEN:
                raise ValidationError(f"case {case_id} is {case.status.value}, not open")
            case = case.step(CaseStatus.UNDER_REVIEW, entry)
        elif reverse:
            case = case.step(
                CaseStatus.REVERSED, entry, self.reverse(uow, case, staff, said, key, now)
            )
        else:
            case = case.step(CaseStatus.REJECTED, entry)
        uow.records.update(record.changed(case.to_data()))
        return case

    def adjust(
        self,
        uow: UnitOfWork,
        holder: str,
        coins: int,
        key: str,
        case_id: str | None,
        metadata: Metadata,
        now: datetime,
    ) -> tuple[Transaction, int]:
        """Credit (*coins* > 0) or debit *holder*'s wallet by hand; the
        transaction and the wallet's balance after."""
        if case_id is not None:
            case = self.ctx.case(uow, case_id)
            if case.holder != holder:
                raise ValidationError(f"case {case_id} is {case.holder}'s, not {holder}'s")
        cause = Cause("case", case_id) if case_id is not None else Cause("adjustment", key)
        wallet = AccountKey.wallet(holder, self.ctx.unit)
        self.ctx.wallets.sweep_within(uow, wallet, now)
        if coins > 0:
            credited = entries.record_credit(
                uow,
                transaction_id=self.ctx.new_id(),
                new_id=self.ctx.new_id,
                kind=TransactionKind.ADJUSTMENT,
                wallet=wallet,
                grants=(entries.Grant(coins, LotOrigin.ADJUSTMENT),),
                now=now,
                key=key,
                cause=cause,
                metadata=metadata,
            )
            return credited.transaction, credited.balances[wallet]
        debited = entries.record_debit(
            uow,
            transaction_id=self.ctx.new_id(),
            kind=TransactionKind.ADJUSTMENT,
            wallet=wallet,
            coins=-coins,
            sink=AccountKey.issuance(self.ctx.unit),
            order=self.ctx.order,
            now=now,
            key=key,
            cause=cause,
            metadata=metadata,
            legs_for=lambda consumed: entries.recognition_legs(consumed, AccountKind.REVENUE),
        )
        return debited.transaction, debited.balances[wallet]

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
