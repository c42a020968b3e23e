"""The example host app, through its HTTP interface (Starlette's test client)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from app import create_app
from starlette.testclient import TestClient

from coinecon.adapters.fake_payments import Decline, FakePaymentGateway, Pend


@pytest.fixture
def payments() -> FakePaymentGateway:
    return FakePaymentGateway()


@pytest.fixture
def client(tmp_path: Path, payments: FakePaymentGateway) -> Any:
    with TestClient(create_app(tmp_path / "books.db", gateway=payments)) as test_client:
        for holder in ("ann", "cat"):
            done = test_client.post(
                f"/holders/{holder}/attestations",
                json={"region": "US", "source": "id-check"},
                headers={"Idempotency-Key": f"age-{holder}"},
            )
            assert done.status_code == 200, done.text
        test_client.post(
            "/creators/cat/enrollment", json={"region": "US"}, headers={"Idempotency-Key": "e-cat"}
        )
        yield test_client


def quote(client: Any, sku: str = "coins_1000") -> dict[str, Any]:
    done = client.post(
        "/quotes", json={"holder": "ann", "region": "US", "sku": sku, "payment_method": "card"}
    )
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


def buy(client: Any, key: str, sku: str = "coins_1000", method: str = "pm_ann") -> Any:
    return client.post(
        "/purchases",
        json={"quote_id": quote(client, sku)["quote_id"], "payment_method": method},
        headers={"Idempotency-Key": key},
    )


def test_quote_purchase_gift_balance_history(client: Any) -> None:
    priced = quote(client)
    assert priced["total"].endswith(" USD") and priced["coins"] >= 1050
    bought = buy(client, "order-1")
    assert bought.status_code == 201
    assert bought.json()["status"] == "completed"
    coins = bought.json()["balance"]
    gift = client.post(
        "/gifts",
        json={
            "sender": "ann",
            "creator": "cat",
            "gift": "rose",
            "quantity": 3,
            "stream": "live-1",
            "region": "US",
        },
        headers={"Idempotency-Key": "gift-1"},
    )
    assert gift.status_code == 201, gift.text
    assert (gift.json()["coins"], gift.json()["earned"], gift.json()["carry"]) == (3, 1, "1/2")
    assert client.get("/holders/ann/balance").json() == {"holder": "ann", "coins": coins - 3}
    entries = client.get("/holders/ann/history", params={"limit": 5}).json()["entries"]
    assert [e["kind"] for e in entries] == ["gift", "purchase"]


def test_errors_map_to_http_statuses(client: Any, payments: FakePaymentGateway) -> None:
    assert (
        client.post(
            "/purchases",
            json={"quote_id": "nope", "payment_method": "pm"},
            headers={"Idempotency-Key": "k"},
        ).status_code
        == 404
    )
    assert buy(client, "").status_code == 422  # no key
    assert (
        client.post(
            "/quotes", json={"holder": "ann", "region": "XX", "sku": "coins_100"}
        ).status_code
        == 422
    )
    too_much = client.post(
        "/gifts",
        json={"sender": "ann", "creator": "cat", "gift": "lion", "stream": "s", "region": "US"},
        headers={"Idempotency-Key": "g-big"},
    )
    assert too_much.status_code == 402 and too_much.json()["type"] == "InsufficientFunds"
    self_gift = client.post(
        "/gifts",
        json={"sender": "cat", "creator": "cat", "gift": "rose", "stream": "s", "region": "US"},
        headers={"Idempotency-Key": "g-self"},
    )
    assert self_gift.status_code == 403
    buy(client, "order-1")
    assert buy(client, "order-1", sku="coins_100").status_code == 409  # another request
    payments.script("pm_declined", Decline("insufficient_funds"))
    declined = buy(client, "order-2", method="pm_declined")
    assert (declined.status_code, declined.json()["status"]) == (201, "declined")
    assert client.post("/quotes", content=b"not json").status_code == 400


def test_the_webhook_settles_a_pending_purchase_once(
    client: Any, payments: FakePaymentGateway
) -> None:
    payments.script("pm_bank", Pend())
    pending = buy(client, "order-1", method="pm_bank").json()
    assert pending["status"] == "pending"
    event = payments.settle(pending["purchase_id"])
    body = {
        "id": event.id,
        "type": "settled",
        "charge_id": event.charge_id,
        "occurred_at": event.occurred_at.isoformat(),
    }
    assert client.post("/webhooks/payments", json=body).json()["status"] == "applied"
    assert client.post("/webhooks/payments", json=body).json()["status"] == "duplicate"
    assert client.get("/holders/ann/balance").json()["coins"] > 0


def test_two_concurrent_purchases_with_one_key_make_one_purchase(
    client: Any, payments: FakePaymentGateway
) -> None:
    quote_id = quote(client)["quote_id"]
    answers: list[Any] = []

    def purchase() -> None:
        answers.append(
            client.post(
                "/purchases",
                json={"quote_id": quote_id, "payment_method": "pm_ann"},
                headers={"Idempotency-Key": "twin"},
            )
        )

    twins = [threading.Thread(target=purchase) for _ in range(2)]
    for twin in twins:
        twin.start()
    for twin in twins:
        twin.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["purchase_id"] == answers[1].json()["purchase_id"]
    assert len(list(payments.charges())) == 1  # charged once
    assert client.get("/holders/ann/balance").json()["coins"] == answers[0].json()["balance"]
