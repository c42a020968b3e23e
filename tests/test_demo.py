"""The demo that the README's Quick start runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from coinecon.__main__ import main
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.wallets import Wallets
from coinecon.money.units import Unit

if TYPE_CHECKING:
    import pytest


def test_the_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "alice: of age from 2026-03-02, vouched by id-check" in out
    assert "in a temporary SQLite file, deleted at the end (--db PATH keeps it)" in out
    assert "what the buyer pays:\n       1000 coins (coins_1000): 9.99 USD" in out
    assert "what the platform pays out of it:\n       card processing: -0.62 USD" in out
    assert "the buyer pays 10.88 USD; the platform keeps 9.37 USD" in out
    assert "completed: alice has 1100 COIN (100 COIN bonus, for 30 days)" in out
    assert "dan: declined (insufficient_funds); his wallet: 0 COIN" in out
    assert "carol: pending; her wallet: 0 COIN" in out
    assert "the bank settles: completed; her wallet: 525 COIN" in out
    assert "the same event delivered twice: duplicate" in out
    assert "alice: a rose (1 COIN): bob earns 0 DIAMOND, 1/2 carried" in out
    assert "alice: 3 roses: bob earns 2 DIAMOND (1/2 + 3/2 = 2), 0 carried" in out
    assert "alice: a castle (800 COIN): refused, 204 coins short" in out
    assert "the rocket again, same idempotency key: the same receipt, 596 COIN left" in out
    assert "carol buys 2 waving stickers (6 COIN, the platform's alone)" in out
    assert "1100 coins taken back; 504 were spent already" in out
    assert "bob's earnings are 250 DIAMOND" in out  # alice's gifts' earnings clawed back
    assert "another rose: refused" in out
    assert "250 DIAMOND make 1.25 USD" in out
    assert "failed (account_closed); the money is back: he is owed 1.25 USD" in out
    assert "a payout of 1.00 USD (fee 0.25 USD, 0.75 USD sent): settled; he is owed 0.25 USD" in out
    assert "verify(): clean" in out
    assert "losses: 4.03 USD" in out  # the value of the coins alice gifted
    assert "creator-share: 1.25 USD" in out  # what bob's diamonds became
    assert "posting,earnings,bob,unit,DIAMOND" in out  # bob's statement
    assert out.rstrip().endswith("closing,wallet,alice,unit,COIN,,,,,,,,,-504,")


def test_the_demo_can_keep_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.db"
    assert main(["demo", "--db", str(path)]) == 0
    capsys.readouterr()
    with SqliteStore(path, read_only=True) as store:
        wallets = Wallets(store)
        assert wallets.verify().ok
        assert wallets.balance("alice", Unit("COIN")) == Unit("COIN")(-504)
        earned = wallets.balances([AccountKey.earnings("bob", Unit("DIAMOND"))])
        assert sum(earned.values()) == 0  # clawed back, or converted


def test_python_dash_m_runs_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coinecon"], capture_output=True, text=True, check=True
    )
    assert "verify(): clean" in done.stdout


def test_the_demo_never_writes_into_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "coins.db"
    path.write_bytes(b"someone's data")
    assert main(["demo", "--db", str(path)]) == 1
    assert "exists" in capsys.readouterr().err
    assert path.read_bytes() == b"someone's data"
