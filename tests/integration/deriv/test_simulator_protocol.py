"""The simulator's own protocol behaviour, spoken raw over WebSocket (no adapter).

Streams (the all-open-contracts stream is the adapter's settlement path), straggler
lookups, profit_table paging, the batch buy's per-token results, the latency fault and
stopping with contracts still running.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import websockets

from apps.brokers.deriv.simulator import SimConfig, running_simulator
from tests.fixtures.deriv_sim import SimHandle

PARAMS = {
    "contract_type": "CALL",
    "currency": "USD",
    "symbol": "R_100",
    "amount": 1,
    "basis": "stake",
    "duration": 15,  # 0.5 s at the tests' 30x
    "duration_unit": "s",
}


class Client:
    """One raw connection: replies by req_id, stream messages by subscription id."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self._next = 0
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.streams: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.received: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            self.received.append(message)
            future = self._replies.pop(message.get("req_id", -1), None)
            if future is not None:
                future.set_result(message)
                continue
            sub = (message.get("subscription") or {}).get("id")
            if sub is not None:
                self.streams.setdefault(sub, asyncio.Queue()).put_nowait(message)

    async def call(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[self._next] = future
        await self.ws.send(json.dumps({**payload, "req_id": self._next}))
        return await asyncio.wait_for(future, timeout)

    def stream(self, sub_id: str) -> asyncio.Queue[dict[str, Any]]:
        return self.streams.setdefault(sub_id, asyncio.Queue())

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


@pytest.fixture
async def connect(sim: SimHandle) -> AsyncIterator[Any]:
    clients: list[Client] = []

    async def open_client(token: str | None = None) -> Client:
        client = Client(await websockets.connect(sim.url))
        clients.append(client)
        if token is not None:
            reply = await client.call({"authorize": token})
            assert "error" not in reply, reply
        return client

    yield open_client
    for client in clients:
        await client.close()


async def _updates(queue: asyncio.Queue[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return [
        (await asyncio.wait_for(queue.get(), timeout=5))["proposal_open_contract"]
        for _ in range(count)
    ]


async def test_all_contracts_stream_sees_contracts_bought_after_it_opened(
    sim: SimHandle, connect: Any
) -> None:
    account = await sim.account(balance="100")
    other = await sim.account(balance="100")
    await sim.faults(force_outcome="won")
    watcher = await connect(account.token)
    opened = await watcher.call({"proposal_open_contract": 1, "subscribe": 1})
    assert opened["proposal_open_contract"] == {}  # nothing open yet
    stream = watcher.stream(opened["subscription"]["id"])

    buyer = await connect(account.token)
    single = await buyer.call({"buy": "1", "price": 1, "parameters": PARAMS})
    batch = await buyer.call(
        {
            "buy_contract_for_multiple_accounts": "1",
            "price": 1,
            "parameters": PARAMS,
            "tokens": [account.token, other.token],
        }
    )
    [mine, not_mine] = batch["buy_contract_for_multiple_accounts"]["result"]
    expected = {single["buy"]["contract_id"], mine["contract_id"]}

    updates = await _updates(stream, 4)

    by_contract: dict[int, list[dict[str, Any]]] = {}
    for update in updates:
        by_contract.setdefault(update["contract_id"], []).append(update)
    assert set(by_contract) == expected  # the other account's contract is not on it
    for first, last in by_contract.values():
        assert (first["is_expired"], first["is_sold"], first["status"]) == (1, 0, "open")
        assert (last["is_sold"], last["status"]) == (1, "won")
        assert last["sell_price"] == last["payout"] == 1.95
        assert last["profit"] == 0.95
        assert set(last["transaction_ids"]) == {"buy", "sell"}

    # The stream outlives its contracts: a later buy settles on it too.
    later = await buyer.call({"buy": "1", "price": 1, "parameters": PARAMS})
    [expired, sold] = await _updates(stream, 2)
    assert expired["contract_id"] == sold["contract_id"] == later["buy"]["contract_id"]
    assert (expired["is_expired"], sold["status"]) == (1, "won")
    assert not_mine["contract_id"] not in {u["contract_id"] for u in updates}
    assert await sim.balance(account.login) == Decimal("100") - 3 + 3 * Decimal("1.95")


async def test_open_contracts_stream_starts_with_every_open_contract(
    sim: SimHandle, connect: Any
) -> None:
    account = await sim.account()
    client = await connect(account.token)
    ids = [
        (await client.call({"buy": "1", "price": 1, "parameters": PARAMS}))["buy"]["contract_id"]
        for _ in range(3)
    ]
    before = len(client.received)

    first = await client.call({"proposal_open_contract": 1})
    await asyncio.sleep(0.2)  # one message per open contract, all with the request's req_id

    answers = [m for m in client.received[before:] if m.get("req_id") == first["req_id"]]
    listed = [m["proposal_open_contract"]["contract_id"] for m in answers]
    assert sorted(listed) == ids
    assert all("subscription" not in m for m in answers)


async def test_sold_contract_is_answered_by_id_and_its_stream_ends(
    sim: SimHandle, connect: Any
) -> None:
    account = await sim.account(balance="100")
    await sim.faults(force_outcome="lost")
    client = await connect(account.token)
    bought = await client.call({"buy": "1", "price": 1, "parameters": PARAMS, "subscribe": 1})
    contract_id = bought["buy"]["contract_id"]
    stream = client.stream(bought["subscription"]["id"])

    [expired, sold] = await _updates(stream, 2)

    assert expired["is_expired"] == 1 and sold["status"] == "lost"
    assert (await client.call({"forget": bought["subscription"]["id"]}))["forget"] == 0
    # A straggler asking afterwards gets the final state, with or without subscribe.
    for ask in ({}, {"subscribe": 1}):
        reply = await client.call({"proposal_open_contract": 1, "contract_id": contract_id} | ask)
        state = reply["proposal_open_contract"]
        assert (state["is_sold"], state["status"], state["sell_price"]) == (1, "lost", 0)
        assert state["profit"] == -1
        assert "subscription" not in reply
    portfolio = await client.call({"portfolio": 1})
    assert portfolio["portfolio"]["contracts"] == []


async def test_reauthorising_a_connection_moves_it_to_the_new_account(
    sim: SimHandle, connect: Any
) -> None:
    first = await sim.account()
    second = await sim.account()
    await sim.faults(force_outcome="won")
    client = await connect(first.token)
    opened = await client.call({"proposal_open_contract": 1, "subscribe": 1})
    await client.call({"authorize": second.token})
    buyer = await connect(first.token)
    await buyer.call({"buy": "1", "price": 1, "parameters": PARAMS})
    seen_before = len(client.received)

    await asyncio.sleep(1.0)  # the first account's contract settles meanwhile

    assert client.received[seen_before:] == []  # no longer the first account's connection
    assert client.stream(opened["subscription"]["id"]).empty()
    balance = await client.call({"balance": 1})
    assert balance["balance"]["loginid"] == second.login


async def test_balance_stream_follows_buys_and_wins(sim: SimHandle, connect: Any) -> None:
    account = await sim.account(balance="10")
    await sim.faults(force_outcome="won")
    client = await connect(account.token)
    opened = await client.call({"balance": 1, "subscribe": 1})
    stream = client.stream(opened["subscription"]["id"])

    bought = await client.call({"buy": "1", "price": 2, "parameters": PARAMS | {"amount": 2}})

    after_buy = await asyncio.wait_for(stream.get(), 5)
    after_win = await asyncio.wait_for(stream.get(), 5)
    assert bought["buy"]["balance_after"] == after_buy["balance"]["balance"] == 8
    assert after_win["balance"]["balance"] == 8 + 3.9
    assert after_win["subscription"]["id"] == opened["subscription"]["id"]


async def test_profit_table_pages_sold_contracts(sim: SimHandle, connect: Any) -> None:
    account = await sim.account()
    await sim.faults(force_outcome="won")
    client = await connect(account.token)
    # Sold out of purchase order: the longer contract is bought first.
    longer = await client.call({"buy": "1", "price": 1, "parameters": PARAMS | {"duration": 30}})
    ids = [longer["buy"]["contract_id"]] + [
        (await client.call({"buy": "1", "price": 1, "parameters": PARAMS}))["buy"]["contract_id"]
        for _ in range(4)
    ]
    await asyncio.sleep(1.5)

    async def table(**query: Any) -> list[int]:
        reply = await client.call({"profit_table": 1} | query)
        rows = reply["profit_table"]["transactions"]
        assert reply["profit_table"]["count"] == len(rows)
        return [row["contract_id"] for row in rows]

    assert await table() == ids[::-1]  # newest purchase first
    assert await table(sort="ASC") == ids
    assert await table(sort="ASC", offset=1, limit=2) == ids[1:3]
    assert await table(offset=3) == ids[::-1][3:]
    now = int(time.time())
    assert await table(date_from=now + 60) == []
    assert await table(date_to=now - 3600) == []
    assert await table(date_from=now - 3600, date_to=now + 60, sort="ASC") == ids
    [described] = (await client.call({"profit_table": 1, "limit": 1, "description": 1}))[
        "profit_table"
    ]["transactions"]
    assert described["contract_id"] == ids[-1]
    assert described["shortcode"].startswith("CALL_R_100_1.95_")
    assert "longcode" in described


async def test_batch_buy_reports_each_token(sim: SimHandle, connect: Any) -> None:
    rich = await sim.account(balance="100")
    poor = await sim.account(balance="0.50")
    euro = await sim.account(currency="EUR")
    client = await connect(rich.token)
    tokens = [rich.token, "not-a-token-at-all", poor.token, euro.token, rich.token]

    reply = await client.call(
        {
            "buy_contract_for_multiple_accounts": "1",
            "price": 1,
            "parameters": PARAMS,
            "tokens": tokens,
            "passthrough": {"batch": 7},
        }
    )

    results = reply["buy_contract_for_multiple_accounts"]["result"]
    assert [r["token"] for r in results] == tokens
    assert [r.get("code") for r in results] == [
        None,
        "InvalidToken",
        "InsufficientBalance",
        "ContractBuyValidationError",
        None,
    ]
    assert results[2]["message_to_client"].startswith("Your account balance (USD0.50)")
    assert results[3]["message_to_client"] == "Currency USD is not your account's."
    first, last = results[0], results[4]
    assert last["contract_id"] == first["contract_id"] + 1
    assert last["transaction_id"] == first["transaction_id"] + 2
    for receipt in (first, last):
        assert set(receipt) == {
            "buy_price",
            "contract_id",
            "longcode",
            "payout",
            "purchase_time",
            "shortcode",
            "start_time",
            "token",
            "transaction_id",
        }
        assert (receipt["buy_price"], receipt["payout"]) == (1, 1.95)
    assert await sim.balance(rich.login) == 98
    ledger = await sim.ledger()
    assert [row["passthrough"] for row in ledger] == [{"batch": 7}, {"batch": 7}]

    # Shared parameters that fail fail every token alike (after the currency check).
    bad = await client.call(
        {
            "buy_contract_for_multiple_accounts": "1",
            "price": 1,
            "parameters": PARAMS | {"duration": 2},
            "tokens": [rich.token, euro.token],
        }
    )
    assert [r["code"] for r in bad["buy_contract_for_multiple_accounts"]["result"]] == [
        "OfferingsValidationError",
        "ContractBuyValidationError",
    ]


async def test_a_batch_counts_as_one_call(sim: SimHandle, connect: Any) -> None:
    accounts = [await sim.account() for _ in range(5)]
    client = await connect(accounts[0].token)
    # New limits start new counters: three calls a minute from now on.
    (await sim.admin.put("/admin/limits", json={"general": [[3, 60.0]]})).raise_for_status()
    request = {
        "buy_contract_for_multiple_accounts": "1",
        "price": 1,
        "parameters": PARAMS,
        "tokens": [a.token for a in accounts],
    }

    replies = [await client.call(request) for _ in range(4)]

    assert all("error" not in r for r in replies[:3])
    assert replies[3]["error"]["code"] == "RateLimit"
    assert len(await sim.ledger()) == 15


async def test_latency_fault_delays_requests_concurrently(sim: SimHandle, connect: Any) -> None:
    client = await connect()
    await sim.faults(latency_ms=1000)
    started = time.monotonic()

    replies = await asyncio.gather(*(client.call({"ping": 1}) for _ in range(10)))

    elapsed = time.monotonic() - started
    assert all(r["ping"] == "pong" for r in replies)
    assert 1.0 <= elapsed < 6.0  # ten in a row would take 10 s


async def test_stop_cancels_contracts_still_running() -> None:
    async with running_simulator(SimConfig(time_scale=30.0)) as running:
        simulator = running.simulator
        account = simulator.create_account("USD", Decimal("100"))
        async with websockets.connect(running.url) as ws:
            await ws.send(json.dumps({"authorize": account.token}))
            await ws.recv()
            await ws.send(json.dumps({"buy": "1", "price": 1, "parameters": PARAMS}))
            bought = json.loads(await ws.recv())
        contract_id = bought["buy"]["contract_id"]
        await simulator.stop()
        await asyncio.sleep(0.8)  # past its expiry
        assert simulator.contracts[contract_id].is_sold == 0


async def test_contracts_settle_once_their_scaled_duration_is_over(
    sim: SimHandle, connect: Any
) -> None:
    account = await sim.account()
    client = await connect(account.token)
    bought = await client.call(
        {"buy": "1", "price": 1, "parameters": PARAMS | {"duration": 30}, "subscribe": 1}
    )
    started = time.monotonic()
    stream = client.stream(bought["subscription"]["id"])

    [expired, sold] = await _updates(stream, 2)

    elapsed = time.monotonic() - started
    assert expired["is_expired"] == 1 and sold["is_sold"] == 1
    assert 0.95 <= elapsed < 15.0  # 30 s at 30x: never early, never the unscaled 30 s


async def test_running_contracts_hold_no_task_each() -> None:
    async with running_simulator(SimConfig(time_scale=30.0)) as running:
        simulator = running.simulator
        accounts = [simulator.create_account("USD", Decimal("100")) for _ in range(40)]
        async with websockets.connect(running.url) as ws:
            await ws.send(json.dumps({"authorize": accounts[0].token}))
            await ws.recv()
            tasks_before = len(asyncio.all_tasks())
            for _ in range(5):
                await ws.send(
                    json.dumps(
                        {
                            "buy_contract_for_multiple_accounts": "1",
                            "price": 1,
                            "parameters": PARAMS,
                            "tokens": [a.token for a in accounts],
                        }
                    )
                )
                await ws.recv()
            assert len(simulator.ledger) == 200
            assert len(asyncio.all_tasks()) - tasks_before < 10
            await asyncio.sleep(0.8)
            assert all(c.is_sold for c in simulator.ledger)
