"""The embedded MongoDB stand-in on SQLite (what `copier up` runs): writes by string
``_id`` take the primary-key path, queries still answer as MongoDB would, and no write
leaves a change-stream record behind."""

from __future__ import annotations

import asyncio
import sqlite3
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


async def test_writes_leave_no_change_stream_records(
    sqlite_mongo: AsyncMongoClient[dict[str, object]], tmp_path: Path
) -> None:
    orders = sqlite_mongo.copier.orders
    upserts = [UpdateOne({"_id": f"s.{i}"}, {"$set": {"n": i}}, upsert=True) for i in range(50)]
    await orders.bulk_write(upserts, ordered=False)
    await orders.update_one({"_id": "s.3"}, {"$set": {"outcome": "won"}})
    await orders.insert_many([{"_id": f"t.{i}"} for i in range(5)])
    await orders.delete_one({"_id": "t.0"})
    assert await orders.count_documents({}) == 54

    with sqlite3.connect(tmp_path / "mongo" / "copier.sqlite") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        # mongoeco keeps the outbox's tables: they stay empty.
        assert {"change_outbox", "change_outbox_identities"} <= tables
        for table in ("change_outbox", "change_outbox_identities"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
