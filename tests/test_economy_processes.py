"""Purchases through CoinEconomy on one SQLite file from several processes at
once, and from a process killed (SIGKILL) at any moment.

The payment provider here keeps its charges in a file of its own, as a real
provider keeps them on its side: a process that dies does not take them with
it, and :meth:`CoinEconomy.reconcile` afterwards asks it what became of each.
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
from pathlib import Path

import pytest

from coinecon import ManualClock
from coinecon.adapters.sqlite import SqliteStore
from coinecon.economy import CoinEconomy
from coinecon.recharge import (
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    EligibilityPolicy,
    PurchaseStatus,
)
from economy_kit import COIN, T0, book
from workload import child_command

HOLDERS = ("ann", "bob", "cy", "dee")
SKUS = {"coins_100": 100, "coins_500": 525, "coins_1000": 1100}  # coins with the bonus


class FileProvider:
    """A payment provider whose charges outlive the processes that ask for
    them: one line per charge in a file, appended before it answers (under
    an exclusive lock, so that processes racing on one charge id take it
    once)."""

    def __init__(self, path: Path, *, die_at: int = 0) -> None:
        self.path = path
        self.die_at = die_at  # kill this process once it took its die_at-th charge
        self.taken = 0

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        charges = {}
        for line in self.path.read_text().splitlines():
            if line.endswith("}"):
                entry = json.loads(line)
                charges[entry["charge_id"]] = entry
        return charges

    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        with self.path.open("a") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            known = self._read().get(request.charge_id)
            if known is None:
                entry = {"charge_id": request.charge_id, "amount": str(request.amount)}
                file.write(json.dumps(entry) + "\n")
                file.flush()
                os.fsync(file.fileno())
                self.taken += 1
                if self.taken == self.die_at:  # the money is taken; the coins are not yet
                    os.kill(os.getpid(), signal.SIGKILL)
        return ChargeOutcome(ChargeStatus.APPROVED, f"ref-{request.charge_id}")

    def lookup(self, charge_id: str) -> ChargeOutcome | None:
        known = self._read().get(charge_id)
        return None if known is None else ChargeOutcome(ChargeStatus.APPROVED, f"ref-{charge_id}")

    def charged(self) -> set[str]:
        return set(self._read())


def economy(path: Path, provider: FileProvider) -> CoinEconomy:
    return CoinEconomy(
        price_book=book(),
        store=SqliteStore(path, timeout=30),
        gateway=provider,
        clock=ManualClock(T0),
        eligibility=EligibilityPolicy(require_age=False),
    )


def plan(seed: int, count: int) -> list[tuple[str, str, str]]:
    """(idempotency key, holder, sku) for *count* purchases; keys repeat, so
    that twins race and replay."""
    rng = random.Random(seed)
    return [
        (f"order-{rng.randrange(count // 2 + 1)}", rng.choice(HOLDERS), rng.choice(sorted(SKUS)))
        for _ in range(count)
    ]


def child_main(arguments: list[str]) -> int:
    """Run the purchases of a plan, printing each key as it completes."""
    path, provider_path, seed, count, die_at = arguments
    store_economy = economy(Path(path), FileProvider(Path(provider_path), die_at=int(die_at)))
    for key, holder, sku in plan(int(seed), int(count)):
        quote = store_economy.quote(holder, region="US", sku=sku)
        try:
            purchase = store_economy.purchase(quote, f"pm_{holder}", key)
        except Exception as error:  # noqa: BLE001 (a twin's other quote: a conflict)
            print(json.dumps({"key": key, "error": type(error).__name__}), flush=True)  # noqa: T201
            continue
        print(json.dumps({"key": key, "purchase": purchase.id}), flush=True)  # noqa: T201
    return 0


def check(path: Path, provider: FileProvider) -> None:
    """After any run: settle what waits; then every charge the provider took
    is credited exactly once, nothing it did not take is, and the books are
    clean."""
    settled = economy(path, provider)
    settled.reconcile(limit=10_000, older_than=timedelta(0))
    report = settled.verify()
    assert report.ok, str(report)
    charged = provider.charged()
    completed = {}
    for holder in HOLDERS:
        for purchase in settled.purchases(holder, limit=10_000):
            assert purchase.status in (PurchaseStatus.COMPLETED, PurchaseStatus.FAILED)
            assert (purchase.id in charged) == (purchase.status is PurchaseStatus.COMPLETED)
            if purchase.status is PurchaseStatus.COMPLETED:
                completed[purchase.id] = purchase
    assert set(completed) == charged
    for holder in HOLDERS:
        coins = sum(p.total_coins.amount for p in completed.values() if p.holder == holder)
        assert settled.balance(holder) == COIN(coins)


@pytest.mark.slow
def test_processes_racing_on_purchases_credit_each_charge_once(tmp_path: Path) -> None:
    path, provider = tmp_path / "coins.db", FileProvider(tmp_path / "provider.jsonl")
    SqliteStore(path).close()
    children = [
        subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
            child_command(__file__, str(path), str(provider.path), str(seed), "40", "0"),
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)  # the same keys in every process: twins race
    ]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0, out
    check(path, provider)
    keys = {key for seed in range(3) for key, _, _ in plan(seed, 40)}
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        recorded = {uow.idempotency.get(key) is not None for key in keys}
    assert recorded == {True}


@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 3, 17])
def test_a_process_killed_mid_purchase_leaves_nothing_to_credit_twice(
    tmp_path: Path, after: int
) -> None:
    path, provider = tmp_path / "coins.db", FileProvider(tmp_path / "provider.jsonl")
    SqliteStore(path).close()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, str(path), str(provider.path), "7", "400", "0"),
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
    check(path, provider)


@pytest.mark.slow
@pytest.mark.parametrize("die_at", [1, 9])
def test_a_process_killed_between_the_charge_and_the_credit_is_credited_by_reconcile(
    tmp_path: Path, die_at: int
) -> None:
    path, provider = tmp_path / "coins.db", FileProvider(tmp_path / "provider.jsonl")
    SqliteStore(path).close()
    done = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, str(path), str(provider.path), "3", "50", str(die_at)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if sys.platform != "win32":
        assert done.returncode == -signal.SIGKILL
    with SqliteStore(path) as store:
        waiting = CoinEconomy(
            price_book=book(),
            store=store,
            gateway=provider,
            clock=ManualClock(T0),
            eligibility=EligibilityPolicy(require_age=False),
        ).purchases
        charging = [
            p for holder in HOLDERS for p in waiting(holder) if p.status is PurchaseStatus.CHARGING
        ]
    assert len(charging) == 1  # charged by the provider, not credited yet
    assert charging[0].id in provider.charged()
    check(path, provider)
