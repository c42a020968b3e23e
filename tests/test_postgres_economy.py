"""The economy on PostgreSQL: many viewers gifting one creator at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from coinecon.adapters.postgres import PostgresStore
from coinecon.gifts import GiftPolicy
from economy_kit import Kit
from postgres_kit import fresh_store


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with fresh_store(pool_size=8) as store:
        yield store


@pytest.mark.parametrize("tallies", [1, 8])
def test_viewers_gifting_one_creator_at_once_all_land(store: PostgresStore, tallies: int) -> None:
    kit = Kit(store, gift_policy=GiftPolicy(tallies=tallies))
    kit.creator("cat")
    viewers = [f"viewer{n}" for n in range(6)]
    for viewer in viewers:
        kit.adult(viewer)
        kit.buy(viewer, "coins_500")
    start = threading.Barrier(len(viewers))
    failures: list[BaseException] = []

    def gift(viewer: str) -> None:
        try:
            start.wait()
            for n in range(8):
                kit.economy.send_gift(
                    viewer,
                    "cat",
                    "rose",
                    1,
                    idempotency_key=f"{viewer}-{n}",
                    region="US",
                    context="stream-1",
                )
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=gift, args=(viewer,)) for viewer in viewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert kit.economy.creator("cat").gifts == len(viewers) * 8
    report = kit.economy.verify()
    assert report.ok, str(report)
