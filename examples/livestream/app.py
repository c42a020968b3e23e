"""A small live-stream host service on coinecon: quote, purchase, the payment
provider's webhook, send a gift, and read a balance and history.

Run it with ``uvicorn --factory app:create_app`` from this folder (after ``pip install -r
requirements.txt`` and coinecon itself). It keeps its books in the SQLite file
named by ``COINECON_DB`` (``books.db`` by default), priced by the definition
file ``COINECON_ECONOMY`` (``../economy.toml``), and pays through coinecon's
fake provider: a real host passes its own ``PaymentGateway``.

What it shows:

- coinecon is synchronous; every call runs in Starlette's thread pool
  (``run_in_threadpool``), so the event loop never waits on SQLite, and the
  ``SqliteStore``'s group commit lets concurrent requests share commits;
- idempotency keys come from the ``Idempotency-Key`` request header;
- coinecon's typed errors map to HTTP statuses (:data:`STATUSES`), and a
  body that is missing a field or has one of the wrong kind is a 422 with a
  JSON error, never a 500.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from coinecon import (
    CoineconError,
    CoinEconomy,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidTypeError,
    LimitExceeded,
    Money,
    NotAvailableError,
    NotEligibleError,
    NotFoundError,
    QuoteExpiredError,
    StorageError,
    ValidationError,
)
from coinecon.adapters.fake_payments import FakePaymentGateway
from coinecon.adapters.sqlite import SqliteStore
from coinecon.definitions import load
from coinecon.pricing import Quote
from coinecon.recharge import PaymentEvent, PaymentEventType

if TYPE_CHECKING:
    from starlette.requests import Request

HERE = Path(__file__).resolve().parent
STATUSES: tuple[tuple[type[CoineconError], int], ...] = (
    (IdempotencyConflict, 409),  # the key was used for another request
    (QuoteExpiredError, 410),  # ask for a new quote
    (InsufficientFunds, 402),  # too few coins (or a frozen wallet)
    (LimitExceeded, 429),  # a budget or velocity limit
    (NotEligibleError, 403),  # age, region, self-gift, a creator who may not receive
    (NotFoundError, 404),
    (NotAvailableError, 404),  # not on sale here, an unknown package or gift
    (ValidationError, 422),  # malformed input
    (InvalidTypeError, 422),  # a value of the wrong type (a number for a name...)
    (StorageError, 503),  # the store failed: retry with the same key
)
"""coinecon's errors, the most specific first, and the HTTP status of each."""


def status_of(error: CoineconError) -> int:
    """The HTTP status of *error*."""
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    return 400


class Quotes:
    """The quotes this server issued, by their fingerprint (bounded)."""

    def __init__(self, most: int = 10_000) -> None:
        self.most = most
        self.issued: OrderedDict[str, Quote] = OrderedDict()

    def keep(self, quote: Quote) -> str:
        self.issued[quote.fingerprint] = quote
        while len(self.issued) > self.most:
            self.issued.popitem(last=False)
        return quote.fingerprint

    def get(self, quote_id: str) -> Quote:
        quote = self.issued.get(quote_id)
        if quote is None:
            raise NotFoundError(f"no quote {quote_id!r}: ask for a new one")
        return quote


def create_app(
    db: str | Path | None = None,
    economy_file: str | Path | None = None,
    gateway: FakePaymentGateway | None = None,
) -> Starlette:
    """The service, on the store *db* priced by *economy_file*."""
    definition = load(
        economy_file or os.environ.get("COINECON_ECONOMY", HERE.parent / "economy.toml")
    )
    store = SqliteStore(db or os.environ.get("COINECON_DB", "books.db"))
    payments = gateway if gateway is not None else FakePaymentGateway()
    economy = CoinEconomy(store=store, gateway=payments, **definition.economy_settings())
    quotes = Quotes()

    def endpoint(
        work: Callable[[Request, dict[str, Any]], Any], *, created: int = 200
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def handle(request: Request) -> JSONResponse:
            body: dict[str, Any] = {}
            if request.method == "POST":
                try:
                    body = await request.json()
                except ValueError:
                    return JSONResponse({"error": "the body is not JSON"}, status_code=400)
                if not isinstance(body, dict):
                    return JSONResponse({"error": "the body is a JSON object"}, status_code=400)
            try:
                result = await run_in_threadpool(work, request, body)
            except CoineconError as error:
                return JSONResponse(
                    {"error": str(error), "type": type(error).__name__},
                    status_code=status_of(error),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                # What the body's own fields cause: one missing (KeyError), or of the
                # wrong kind, such as an unknown event type or time (ValueError), or a
                # number where text is expected (TypeError, AttributeError).
                return JSONResponse(
                    {"error": f"missing or malformed: {error}", "type": type(error).__name__},
                    status_code=422,
                )
            return JSONResponse(result, status_code=created)

        return handle

    def key_of(request: Request) -> str:
        key = request.headers.get("Idempotency-Key")
        if not key:
            raise ValidationError("send an Idempotency-Key header")
        return key

    def quote(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        issued = economy.quote(
            body["holder"],
            region=body["region"],
            storefront=body.get("storefront", "web"),
            payment_method=body.get("payment_method", "card"),
            sku=body.get("sku"),
            coins=body.get("coins"),
        )
        return {
            "quote_id": quotes.keep(issued),
            "coins": issued.total_coins.amount,
            "total": str(issued.total),
            "lines": [str(line) for line in issued.buyer_lines],
            "expires_at": issued.expires_at.isoformat(),
        }

    def purchase(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        key = key_of(request)  # before the quote: no key, no look-up
        bought = economy.purchase(quotes.get(body["quote_id"]), body["payment_method"], key)
        return {
            "purchase_id": bought.id,
            "status": bought.status.value,
            "reason": bought.reason,
            "balance": economy.balance(bought.holder).amount,
        }

    def webhook(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        event = PaymentEvent(
            id=body["id"],
            type=PaymentEventType(body["type"]),
            charge_id=body["charge_id"],
            occurred_at=datetime.fromisoformat(body["occurred_at"]),
            amount=None if amount is None else Money(*amount.split(" ")),
            reason=body.get("reason"),
        )
        outcome = economy.handle_payment_event(event)
        return {"status": outcome.status, "purchase_status": outcome.purchase.status.value}

    def gift(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        key = key_of(request)
        receipt = economy.send_gift(
            body["sender"],
            body["creator"],
            body["gift"],
            body.get("quantity", 1),
            context=body["stream"],
            region=body["region"],
            idempotency_key=key,
        )
        return receipt.to_data() | {"sent_at": receipt.sent_at.isoformat()}

    def attest(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        holder = request.path_params["holder"]
        economy.attest_age(
            key_of(request), holder=holder, region=body["region"], source=body["source"], adult=True
        )
        return {"holder": holder, "attested": True}

    def enroll(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        creator = request.path_params["creator"]
        economy.enroll_creator(key_of(request), creator=creator, region=body["region"])
        return {"creator": creator, "receiving": True}

    def balance(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        holder = request.path_params["holder"]
        return {"holder": holder, "coins": economy.balance(holder).amount}

    def history(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        holder = request.path_params["holder"]
        page = economy.history(
            holder,
            limit=int(request.query_params.get("limit", "50")),
            cursor=request.query_params.get("cursor"),
        )
        return {
            "entries": [
                {
                    "transaction_id": e.transaction_id,
                    "kind": e.kind.value,
                    "amount": e.amount,
                    "balance": e.balance_after,
                    "occurred_at": e.occurred_at.isoformat(),
                    "cause": str(e.cause),
                }
                for e in page.entries
            ],
            "next_cursor": page.next_cursor,
        }

    routes = [
        Route("/quotes", endpoint(quote), methods=["POST"]),
        Route("/purchases", endpoint(purchase, created=201), methods=["POST"]),
        Route("/webhooks/payments", endpoint(webhook), methods=["POST"]),
        Route("/gifts", endpoint(gift, created=201), methods=["POST"]),
        Route("/holders/{holder}/attestations", endpoint(attest), methods=["POST"]),
        Route("/creators/{creator}/enrollment", endpoint(enroll), methods=["POST"]),
        Route("/holders/{holder}/balance", endpoint(balance), methods=["GET"]),
        Route("/holders/{holder}/history", endpoint(history), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()  # the store's connections, when the server stops

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.economy = economy
    app.state.payments = payments
    return app
