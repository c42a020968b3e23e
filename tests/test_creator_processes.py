"""Gifts, conversions and payouts through CoinEconomy on one SQLite file from
several processes at once (twins racing on one key), and from a process
killed (SIGKILL) at any moment, even between a payout's record and the
provider's answer.

The payout provider here keeps its payouts in a file of its own, as a real
provider keeps them on its side: :meth:`CoinEconomy.reconcile_payouts`
afterwards asks it what became of each.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from coinecon import AccountKey, AccountKind, Currency, ManualClock, Money, TransactionKind
from coinecon.adapters.fake_payments import FakePaymentGateway
from coinecon.adapters.sqlite import SqliteStore
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payout_gateway import PayoutOutcome, PayoutRequest, PayoutStatus
from coinecon.economy import CoinEconomy
from coinecon.recharge import EligibilityPolicy
from economy_kit import CATALOG, COIN, T0, book
from workload import child_command

VIEWERS = ("ann", "bob", "cy")
CREATORS = ("cat", "dan")
GIFTS = {"rose": 1, "heart": 5}
USD = Currency.of("USD")
COINS = 3 * 1100  # each viewer's, before the run


class FilePayouts:
    """A payout provider whose payouts outlive the processes that ask for
    them: one line per payout in a file, appended before it answers."""

    def __init__(self, path: Path, *, die_at: int = 0) -> None:
        self.path = path
        self.die_at = die_at  # kill this process once it sent its die_at-th payout
        self.sent = 0

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        lines = self.path.read_text().splitlines()
        return {e["payout_id"]: e for e in map(json.loads, filter(None, lines))}

    def send(self, request: PayoutRequest) -> PayoutOutcome:
        with self.path.open("a") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            if request.payout_id not in self._read():
                entry = {"payout_id": request.payout_id, "amount": request.amount.minor}
                file.write(json.dumps(entry) + "\n")
                file.flush()
                os.fsync(file.fileno())
                self.sent += 1
                if self.sent == self.die_at:  # sent; the economy does not know yet
                    os.kill(os.getpid(), signal.SIGKILL)
        return PayoutOutcome(PayoutStatus.SENT, f"ref-{request.payout_id}")

    def lookup(self, payout_id: str) -> PayoutOutcome | None:
        known = self._read().get(payout_id)
        return None if known is None else PayoutOutcome(PayoutStatus.SENT, f"ref-{payout_id}")

    def payouts(self) -> dict[str, int]:
        return {key: int(entry["amount"]) for key, entry in self._read().items()}


def economy(path: Path, payouts: FilePayouts) -> CoinEconomy:
    clock = ManualClock(T0)
    return CoinEconomy(
        price_book=book(),
        store=SqliteStore(path, timeout=30),
        gateway=FakePaymentGateway(clock=clock),
        clock=clock,
        eligibility=EligibilityPolicy(require_age=False),
        catalog=CATALOG,
        conversion_rate=ConversionRate({"USD": "0.05"}),
        payout_gateway=payouts,
    )


def prepare(path: Path, payouts: FilePayouts) -> None:
    """Viewers with coins, creators enrolled and of age."""
    books = economy(path, payouts)
    for viewer in VIEWERS:
        for n in range(3):
            quote = books.quote(viewer, region="US", sku="coins_1000")
            books.purchase(quote, "pm_card", f"buy-{viewer}-{n}")
    for creator in CREATORS:
        books.attest_age(f"age-{creator}", holder=creator, region="US", source="id", adult=True)
        books.enroll_creator(f"enroll-{creator}", creator=creator, region="US")
    books._store.close()  # type: ignore[attr-defined]


def plan(seed: int, count: int) -> list[tuple[str, ...]]:
    """Gifts (keys shared between processes: twins race), and now and then
    a conversion or a payout (keys of this process)."""
    rng = random.Random(seed)
    steps: list[tuple[str, ...]] = []
    for n in range(count):
        roll = rng.random()
        creator = rng.choice(CREATORS)
        if roll < 0.8:
            key = f"gift-{rng.randrange(count)}"
            twin = random.Random(key)  # the same key asks the same gift in every process
            steps.append(
                (
                    "gift",
                    key,
                    twin.choice(VIEWERS),
                    twin.choice(CREATORS),
                    twin.choice(sorted(GIFTS)),
                )
            )
        elif roll < 0.9:
            steps.append(("convert", f"convert-{seed}-{n}", creator))
        else:
            steps.append(("payout", f"payout-{seed}-{n}", creator, str(rng.randrange(1, 200))))
    return steps


def child_main(arguments: list[str]) -> int:
    """Run a plan, printing each step as it is done."""
    path, payouts_path, seed, count, die_at = arguments
    books = economy(Path(path), FilePayouts(Path(payouts_path), die_at=int(die_at)))
    for step in plan(int(seed), int(count)):
        try:
            if step[0] == "gift":
                _, key, viewer, creator, gift = step
                books.send_gift(
                    viewer, creator, gift, context="live", region="US", idempotency_key=key
                )
            elif step[0] == "convert":
                books.convert(step[2], "USD", idempotency_key=step[1])
            else:
                amount = Money.from_minor(int(step[3]), USD)
                books.request_payout(step[2], amount, destination="acct", idempotency_key=step[1])
        except Exception as error:  # noqa: BLE001 (too little to convert or pay: refused)
            print(json.dumps({"step": step[1], "error": type(error).__name__}), flush=True)  # noqa: T201
            continue
        print(json.dumps({"step": step[1]}), flush=True)  # noqa: T201
    return 0


def check(path: Path, payouts: FilePayouts) -> None:
    """After any run: settle the payouts that wait; then the books are clean,
    every coin gifted earned its creator exactly its share (with the carry),
    and every payout the provider has is one the books took out of what the
    creator is owed, once."""
    books = economy(path, payouts)
    books.reconcile_payouts(limit=10_000, older_than=timedelta(0))
    report = books.verify()
    assert report.ok, str(report)
    gifted = dict.fromkeys(CREATORS, 0)
    with books._store.unit_of_work() as uow:
        for viewer in VIEWERS:
            entries = uow.ledger.history(
                AccountKey.wallet(viewer, COIN), limit=100_000, kinds=(TransactionKind.GIFT,)
            )
            for entry in entries:
                transaction = uow.ledger.get(entry.transaction_id)
                assert transaction is not None
                gifted[str(dict(transaction.metadata)["creator"])] += -entry.amount
        converted = dict.fromkeys(CREATORS, 0)
        for transaction in uow.ledger.transactions():
            if transaction.kind is TransactionKind.CONVERSION:
                for posting in transaction.postings:
                    if posting.account.kind is AccountKind.EARNINGS:
                        converted[posting.account.owner] += -posting.amount
    sent = payouts.payouts()
    for creator in CREATORS:
        earned = books.earnings(creator).amount + converted[creator]
        assert earned + books.creator(creator).carry == Fraction(gifted[creator], 2)
        taken = 0
        for payout in books.payouts(creator, limit=10_000):
            assert payout.status in (PayoutStatus.SENT, PayoutStatus.FAILED)
            assert (payout.id in sent) == (payout.status is PayoutStatus.SENT)
            if payout.status is PayoutStatus.SENT:
                assert sent[payout.id] == payout.net.minor
                taken += payout.amount.minor
        owed = books.payable(creator).get("USD", Money.from_minor(0, USD)).minor
        assert owed == converted[creator] * 5 - taken
    spent = sum(gifted.values())
    assert sum(books.balance(v).amount for v in VIEWERS) == len(VIEWERS) * COINS - spent
    assert set(sent) <= {p.id for c in CREATORS for p in books.payouts(c, limit=10_000)}


@pytest.mark.slow
def test_processes_racing_on_gifts_and_payouts_keep_the_books_exact(tmp_path: Path) -> None:
    path, payouts = tmp_path / "coins.db", FilePayouts(tmp_path / "payouts.jsonl")
    prepare(path, payouts)
    children = [
        subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
            child_command(__file__, str(path), str(payouts.path), str(seed), "60", "0"),
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0, out
    check(path, payouts)
    keys = {step[1] for seed in range(3) for step in plan(seed, 60)}
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        recorded = {key: uow.idempotency.get(key) is not None for key in keys}
    gifts = {key for key in keys if key.startswith("gift-")}
    assert all(recorded[key] for key in gifts)  # every gift went through, once


@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 5, 23])
def test_a_process_killed_mid_run_leaves_exact_books(tmp_path: Path, after: int) -> None:
    path, payouts = tmp_path / "coins.db", FilePayouts(tmp_path / "payouts.jsonl")
    prepare(path, payouts)
    process = subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, str(path), str(payouts.path), "11", "400", "0"),
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        for seen, _ in enumerate(process.stdout, 1):
            if seen > after:
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        watchdog.cancel()
        if process.stdout is not None:
            process.stdout.close()
    if sys.platform != "win32":
        assert process.returncode == -signal.SIGKILL
    check(path, payouts)


@pytest.mark.slow
def test_a_process_killed_between_a_payouts_record_and_its_answer(tmp_path: Path) -> None:
    path, payouts = tmp_path / "coins.db", FilePayouts(tmp_path / "payouts.jsonl")
    prepare(path, payouts)
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, str(path), str(payouts.path), "5", "300", "1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if sys.platform != "win32":
        assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    waiting = economy(path, payouts)
    requested = [
        p
        for creator in CREATORS
        for p in waiting.payouts(creator, limit=10_000)
        if p.status is PayoutStatus.REQUESTED
    ]
    assert len(requested) == 1  # sent by the provider, not known as sent yet
    assert requested[0].id in payouts.payouts()
    waiting._store.close()  # type: ignore[attr-defined]
    check(path, payouts)
    assert economy(path, payouts).payout(requested[0].id).status is PayoutStatus.SENT
