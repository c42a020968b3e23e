"""The example host app, through its HTTP interface (Starlette's test client)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from app import HERE, create_app
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


SETTLED = {"id": "evt-1", "type": "settled", "charge_id": "ch-1"}
AT = "2026-03-02T12:00:00+00:00"


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/webhooks/payments", SETTLED | {"type": "paid", "occurred_at": AT}, "ValueError"),
        ("/webhooks/payments", SETTLED | {"occurred_at": "yesterday"}, "ValueError"),
        ("/webhooks/payments", SETTLED | {"occurred_at": AT, "amount": 5}, "AttributeError"),
        ("/quotes", {"holder": 5, "region": "US", "sku": "coins_100"}, "InvalidTypeError"),
        ("/quotes", {"holder": "ann", "region": "US", "coins": "many"}, "InvalidTypeError"),
    ],
)
def test_a_malformed_field_is_a_422_with_a_json_error(
    client: Any, path: str, body: dict[str, Any], error: str
) -> None:
    done = client.post(path, json=body)
    assert done.status_code == 422, done.text
    assert done.json()["type"] == error and done.json()["error"]


def test_a_malformed_query_is_a_422_with_a_json_error(client: Any) -> None:
    done = client.get("/holders/ann/history", params={"limit": "ten"})
    assert (done.status_code, done.json()["type"]) == (422, "ValueError")


def test_the_idempotency_key_is_asked_for_before_the_quote(client: Any) -> None:
    done = client.post("/purchases", json={"quote_id": "nope", "payment_method": "pm_ann"})
    assert done.status_code == 422  # not 404: the quote is not looked up without a key
    assert "Idempotency-Key" in done.json()["error"]


def test_pytest_runs_here_on_this_folders_settings_alone(request: pytest.FixtureRequest) -> None:
    config = request.config
    assert (config.rootpath, config.inipath) == (HERE, HERE / "pytest.ini")
    conftests = {
        Path(plugin.__file__).parent
        for plugin in config.pluginmanager.get_plugins()
        if Path(getattr(plugin, "__file__", None) or "-").name == "conftest.py"
    }
    assert conftests == {HERE}  # not the repository's own conftest.py


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
