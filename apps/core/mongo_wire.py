"""The embedded MongoDB stand-in: mongoeco's wire-protocol server on a SQLite file.

Production points MONGODB_URI at a real MongoDB; this exists so that `copier up` and the
tests need no system services. Run: ``python -m apps.core.mongo_wire --port 27017
--path data/mongo.sqlite`` (``--path :memory:`` for a throw-away database).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

import mongoeco.engines.sqlite as mongoeco_sqlite
from mongoeco.core.query_plan import EqualsCondition, QueryNode
from mongoeco.engines import MemoryEngine, SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer


class CopierSQLiteEngine(SQLiteEngine):
    """mongoeco's SQLite engine without its full-collection scans on every write by id,
    and without a change-stream outbox (see :func:`_without_change_outbox`).

    Unpatched, each of the ledger's upserts by ``_id`` costs the size of the collection:
    an upsert whose id is not there yet falls back from the primary-key lookup to a scan
    of every document, and before each plan mongoeco asks, of the ``_id`` field, whether
    any document holds it as an array or a tagged value (Decimal128, bytes) — again a
    scan, its answer forgotten on each write. For a string ``_id`` neither can change the
    answer: documents are stored under their id's key, MongoDB never stores an array
    ``_id``, and every document the copier writes has a string ``_id`` (ULIDs, order ids).
    """

    # No transactional outbox to deliver changes from: see _without_change_outbox.
    capabilities = dataclasses.replace(SQLiteEngine.capabilities, change_delivery="none")

    def _select_first_document_for_plan(
        self,
        db_name: str,
        coll_name: str,
        plan: QueryNode,
        *,
        hint: Any = None,
        context: Any = None,
    ) -> tuple[str, dict[str, Any]] | None:
        if (
            isinstance(plan, EqualsCondition)
            and plan.field == "_id"
            and isinstance(plan.value, str)
        ):
            conn = self._require_connection(context)
            row = conn.execute(
                "SELECT storage_key, document FROM documents "
                "WHERE db_name = ? AND coll_name = ? AND storage_key = ?",
                (db_name, coll_name, self._storage_key(plan.value)),
            ).fetchone()
            if row is None:
                return None  # the key is the id: no other document can have it
            return row[0], self._deserialize_document(row[1])
        found: tuple[str, dict[str, Any]] | None = super()._select_first_document_for_plan(
            db_name, coll_name, plan, hint=hint, context=context
        )
        return found

    def _field_is_top_level_array_in_collection(
        self, db_name: str, coll_name: str, field: str
    ) -> bool:
        if field == "_id":
            return False
        return bool(super()._field_is_top_level_array_in_collection(db_name, coll_name, field))

    def _field_contains_tagged_value_type_in_collection(
        self, db_name: str, coll_name: str, field: str, value_type: str
    ) -> bool:
        if field == "_id":
            return False
        return bool(
            super()._field_contains_tagged_value_type_in_collection(
                db_name, coll_name, field, value_type
            )
        )


def _record_no_change(conn: object, **change: object) -> None:
    return None


def _without_change_outbox() -> None:
    """Stop the SQLite engine from keeping its change-stream outbox in this process.

    mongoeco records every write in an outbox table for change streams, in the write's
    own transaction: the whole document again, an identity row, and a compaction down to
    the last 10,000 entries. Delivering them takes a lease on the outbox (another commit)
    and a thread per write. The copier opens no change streams, and that bookkeeping
    would be most of the stand-in's disk writes and CPU per ledger upsert, enough for a
    few large fan-outs to leave the ledger behind for good.
    The engine calls the module's ``append_change`` wherever it writes, so this replaces
    that one function (the stand-in's process has no other engine);
    ``CopierSQLiteEngine`` declares the matching capability ("none": nothing sequenced
    to deliver).
    """
    mongoeco_sqlite._sqlite_append_change = _record_no_change  # type: ignore[attr-defined]


async def serve(host: str, port: int, path: str) -> None:
    if path == ":memory:":
        engine: object = MemoryEngine()
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _without_change_outbox()
        engine = CopierSQLiteEngine(path=path)
    server = AsyncMongoEcoProxyServer(engine=engine, host=host, port=port)
    address = await server.start()
    print(f"mongo wire server listening on {address.uri} (storage: {path})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    print("mongo wire server stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--path", default=":memory:")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.path))
    except OSError as exc:
        print(f"error: mongo wire server cannot listen on {args.host}:{args.port}: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
