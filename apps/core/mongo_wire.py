"""The embedded MongoDB stand-in: mongoeco's wire-protocol server on a SQLite file.

Production points MONGODB_URI at a real MongoDB; this exists so that `copier up` and the
tests need no system services. Run: ``python -m apps.core.mongo_wire --port 27017
--path data/mongo.sqlite`` (``--path :memory:`` for a throw-away database).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from mongoeco.engines import MemoryEngine, SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer


async def serve(host: str, port: int, path: str) -> None:
    if path == ":memory:":
        engine: object = MemoryEngine()
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = SQLiteEngine(path=path)
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
