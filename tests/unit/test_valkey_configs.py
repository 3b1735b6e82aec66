"""The Valkey and Sentinel files `copier up --cluster` renders from ops/valkey: this
machine's ports and paths in place of the deployment's, everything else as shipped, and
written on first start only."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.core.redis import parse_sentinels
from apps.core.valkey_ha import data_node_config, sentinel_config, valkey_ha_specs


def directives(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


def test_a_data_node_keeps_the_shipped_persistence_on_its_own_port(tmp_path: Path) -> None:
    found = directives(data_node_config(7001, tmp_path))
    assert ["port", "7001"] in found
    assert ["bind", "127.0.0.1"] in found
    assert ["dir", str(tmp_path)] in found
    assert ["appendonly", "yes"] in found
    assert ["appendfsync", "everysec"] in found
    assert ["save", '""'] in found
    assert not [d for d in found if d[0] == "replicaof"]
    assert ["replicaof", "127.0.0.1", "7001"] in directives(
        data_node_config(7002, tmp_path, replica_of=7001)
    )


def test_a_sentinel_watches_the_local_primary_under_the_master_name(tmp_path: Path) -> None:
    found = directives(sentinel_config(27001, tmp_path, 7001, "books"))
    assert ["port", "27001"] in found
    assert ["sentinel", "monitor", "books", "127.0.0.1", "7001", "2"] in found
    per_master = [d for d in found if d[0] == "sentinel" and len(d) > 3]
    assert {d[1] for d in per_master} >= {
        "monitor",
        "down-after-milliseconds",
        "failover-timeout",
        "parallel-syncs",
    }
    assert all(d[2] == "books" for d in per_master)


def test_files_are_written_on_first_start_only(tmp_path: Path) -> None:
    specs = valkey_ha_specs(tmp_path, 7001, [7002], [27001, 27002, 27003], "copier")
    assert [s.name for s in specs] == [
        "valkey-1",
        "valkey-2",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
    ]
    assert specs[0].address == "redis://127.0.0.1:7001/0"
    assert specs[2].argv[-1] == "--sentinel"
    learnt = tmp_path / "sentinel-1" / "sentinel.conf"
    learnt.write_text(learnt.read_text() + "sentinel myid abc\n")
    valkey_ha_specs(tmp_path, 7001, [7002], [27001, 27002, 27003], "copier")
    assert learnt.read_text().endswith("sentinel myid abc\n")


def test_sentinel_addresses_are_host_port_pairs() -> None:
    assert parse_sentinels("a:1, b:2") == [("a", 1), ("b", 2)]
    with pytest.raises(ValueError, match="'b' is not host:port"):
        parse_sentinels("a:1,b")
