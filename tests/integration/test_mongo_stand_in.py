"""The embedded MongoDB stand-in on SQLite (what `copier up` runs): writes by string
``_id`` take the primary-key path, and queries still answer as MongoDB would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, UpdateOne

from apps.core import embedded


@pytest.fixture
async def sqlite_mongo(tmp_path: Path) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
    port = embedded.free_port()
    spec = embedded.mongo_spec(tmp_path, port, background=False)
    log = (tmp_path / "mongo.log").open("ab")
    process = await embedded.spawn(spec, stdout=log.fileno())
    log.close()
    try:
        await embedded.wait_healthy(lambda: embedded.mongo_healthy(spec.address), 30, "mongo")
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(spec.address)
        yield client
        await client.close()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def test_upserts_by_id_insert_then_update_and_queries_still_match(
    sqlite_mongo: AsyncMongoClient[dict[str, object]],
) -> None:
    orders = sqlite_mongo.copier.orders
    writes = [
        UpdateOne({"_id": f"sig.sub{i}"}, {"$set": {"state": "placed", "n": i}}, upsert=True)
        for i in range(300)
    ]
    await orders.bulk_write(writes, ordered=False)
    # The settlement of an existing order, and a document whose _id is not a string.
    await orders.update_one({"_id": "sig.sub7"}, {"$set": {"outcome": "won"}}, upsert=True)
    await orders.insert_one({"_id": 42, "state": "numeric id"})

    assert await orders.count_documents({}) == 301
    assert await orders.find_one({"_id": "sig.sub7"}) == {
        "_id": "sig.sub7",
        "state": "placed",
        "n": 7,
        "outcome": "won",
    }
    assert await orders.find_one({"_id": "sig.missing"}) is None
    assert (await orders.find_one({"_id": 42}) or {}).get("state") == "numeric id"
    assert await orders.count_documents({"n": {"$gte": 290}}) == 10
