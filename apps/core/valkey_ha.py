"""Valkey with Sentinel on one machine: a primary, its replicas and three Sentinels, from the
same configuration files the deployment mounts (``ops/valkey/valkey.conf`` and
``ops/valkey/sentinel.conf``).

Each process gets its own copy of its file under ``DATA_DIR`` (``valkey-N/valkey.conf``,
``sentinel-N/sentinel.conf``), with this machine's address, ports and directories in
place of the deployment's. A copy is written on first start only: Sentinel rewrites its
own (its id, its peers, the current primary), and a failover writes ``replicaof`` into
the data nodes' (CONFIG REWRITE), so a restarted process comes back as what Sentinel
last said — a killed old primary returns as a replica of the one promoted meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import redis.asyncio as redis
from redis.exceptions import RedisError

from apps.core.embedded import PROJECT_ROOT, ProcessSpec, find_binary

__all__ = [
    "VALKEY_DIR",
    "data_node_config",
    "sentinel_config",
    "sentinel_healthy",
    "valkey_ha_specs",
]

VALKEY_DIR = PROJECT_ROOT / "ops" / "valkey"
# What the shipped files name, replaced when rendering them for one machine.
_FILE_MASTER_NAME = "copier"
HOST = "127.0.0.1"


def _render(template: str, values: Mapping[str, str], master_name: str = "") -> str:
    """``template`` with each directive named in ``values`` (one or more leading words,
    such as ``port`` or ``sentinel monitor``) set to its value, and, given
    ``master_name``, the master the ``sentinel`` directives speak of renamed."""
    lines = []
    for line in template.splitlines():
        words = line.split()
        for directive, value in values.items():
            if words[: len(directive.split())] == directive.split():
                line = f"{directive} {value}"
                break
        else:
            if master_name and words[:1] == ["sentinel"] and words[2:3] == [_FILE_MASTER_NAME]:
                line = " ".join([*words[:2], master_name, *words[3:]])
        lines.append(line)
    return "\n".join(lines) + "\n"


def data_node_config(port: int, store: Path, *, replica_of: int | None = None) -> str:
    """``ops/valkey/valkey.conf`` for a node on this machine; ``replica_of``: the port of
    the primary it starts as a replica of."""
    text = _render(
        (VALKEY_DIR / "valkey.conf").read_text(),
        {"port": str(port), "bind": HOST, "dir": str(store)},
    )
    if replica_of is not None:
        text += f"replicaof {HOST} {replica_of}\n"
    return text


def sentinel_config(port: int, store: Path, primary_port: int, master_name: str) -> str:
    """``ops/valkey/sentinel.conf`` for a Sentinel on this machine, watching the primary
    on ``primary_port`` as ``master_name``."""
    template = (VALKEY_DIR / "sentinel.conf").read_text()
    monitor = next(
        line.split() for line in template.splitlines() if line.startswith("sentinel monitor ")
    )
    quorum = monitor[-1]
    return _render(
        template,
        {
            "port": str(port),
            "bind": HOST,
            "dir": str(store),
            "sentinel monitor": f"{master_name} {HOST} {primary_port} {quorum}",
        },
        master_name,
    )


def _write_once(path: Path, text: str) -> Path:
    """Write ``path`` unless it exists: what the process rewrote since is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError), path.open("x") as file:
        file.write(text)
    return path


def valkey_ha_specs(
    data_dir: Path,
    primary_port: int,
    replica_ports: Sequence[int],
    sentinel_ports: Sequence[int],
    master_name: str,
) -> list[ProcessSpec]:
    """valkey-1 (the primary at first), valkey-2.. (its replicas) and sentinel-1..N; each
    one's configuration is rendered into ``data_dir`` on its first start only."""
    server = find_binary("valkey-server")
    specs = []
    nodes = [(primary_port, None), *((port, primary_port) for port in replica_ports)]
    for index, (port, replica_of) in enumerate(nodes, start=1):
        store = data_dir / f"valkey-{index}"
        conf = _write_once(
            store / "valkey.conf", data_node_config(port, store, replica_of=replica_of)
        )
        specs.append(
            ProcessSpec(
                f"valkey-{index}",
                [server, str(conf)],
                ports=(port,),
                address=f"redis://{HOST}:{port}/0",
            )
        )
    for index, port in enumerate(sentinel_ports, start=1):
        store = data_dir / f"sentinel-{index}"
        conf = _write_once(
            store / "sentinel.conf", sentinel_config(port, store, primary_port, master_name)
        )
        specs.append(
            ProcessSpec(
                f"sentinel-{index}",
                [server, str(conf), "--sentinel"],
                ports=(port,),
                address=f"redis://{HOST}:{port}",
            )
        )
    return specs


def _in_sync(replica: dict[str, Any]) -> bool:
    return bool(
        not replica["is_sdown"]
        and not replica["is_odown"]
        and replica.get("master-link-status") == "ok"
    )


async def sentinel_healthy(port: int, master_name: str) -> bool:
    """The Sentinel on ``port`` monitors ``master_name``, sees it up, knows enough other
    Sentinels to reach its quorum, and sees a replica in sync with it: a failover could
    happen now, and a write can be confirmed by a replica. A readiness check for start-up:
    after a failover it stays false until a replica is back in sync (the old primary
    restarted), which is no reason to restart a Sentinel."""
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=1)
    try:
        state = cast(dict[str, Any], await client.sentinel_master(master_name))
        replicas = await client.sentinel_slaves(master_name)
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()
    return bool(
        state["is_master"]
        and not state["is_sdown"]
        and not state["is_odown"]
        and state["num-other-sentinels"] + 1 >= state["quorum"]
        and any(_in_sync(r) for r in replicas)
    )
