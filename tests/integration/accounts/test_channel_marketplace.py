"""GET /api/v1/channels over HTTP on the real MongoDB stand-in: sorted, filtered and paged
on the server from `channels` and the ledger's `channel_stats` documents (inserted here in
the ledger's shape), a channel without a record last, bad parameters a plain 400."""

from __future__ import annotations

import time
from typing import Any

from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import Stores


def window(ret: str, rate: float | None, drawdown: str, signals: int) -> dict[str, Any]:
    return {
        "signals": signals,
        "settled": signals,
        "won": 1,
        "lost": signals - 1,
        "win_rate": rate,
        "return_on_stake": ret,
        "profit": "1.5",
        "max_drawdown": drawdown,
        "avg_delay_ms": 120.0,
        "p95_delay_ms": 300.5,
    }


async def record(stores: Stores, channel_id: str, ret: str, rate: float, days: int) -> None:
    w = window(ret, rate, "2.5", 4)
    await stores.db.database["channel_stats"].update_one(
        {"_id": channel_id},
        {
            "$set": {
                "signals": 4,
                "won": 1,
                "lost": 3,
                "track": {"7d": w, "30d": w, "90d": w, "all": w},
                "first_signal_at": time.time() - days * 86400,
                "last_signal_at": time.time(),
                "record_days": days,
                "assets": ["EURUSD"],
                "updated_at": time.time(),
            }
        },
        upsert=True,
    )


async def listing(api: Api, query: str = "") -> dict[str, Any]:
    reply = await api.client.get(f"/api/v1/channels{query}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_sorted_filtered_and_paged_on_the_server(api: Api, stores: Stores) -> None:
    provider = await api.user("provider", "prov")
    good = await api.channel(provider, "Good", price="25")
    poor = await api.channel(provider, "Poor", price="5")
    fresh = await api.channel(provider, "Fresh", price="0")
    await record(stores, good, "0.30", 0.75, 45)
    await record(stores, poor, "-0.20", 0.25, 12)

    body = await listing(api)
    assert [c["name"] for c in body["items"]] == ["Good", "Poor", "Fresh"]
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 3)
    card = body["items"][0]
    assert card["track_30d"]["return_on_stake"] == "0.30"
    assert card["track_30d"]["win_rate"] == 0.75
    assert card["track_all"]["max_drawdown"] == "2.5"
    assert (card["record_days"], card["assets"]) == (45, ["EURUSD"])
    assert card["plan"] == {"price": "25", "currency": "USD", "period_days": 30}
    newcomer = body["items"][2]
    assert (newcomer["track_30d"], newcomer["record_days"], newcomer["assets"]) == (None, 0, [])

    by_price = await listing(api, "?sort=price&order=asc")
    assert [c["id"] for c in by_price["items"]] == [fresh, poor, good]
    worst_first = await listing(api, "?sort=return_30d&order=asc")
    assert [c["id"] for c in worst_first["items"]] == [poor, good, fresh]
    assert [c["id"] for c in (await listing(api, "?min_win_rate=0.5"))["items"]] == [good]
    assert [c["id"] for c in (await listing(api, "?asset=EURUSD&max_price=10"))["items"]] == [poor]
    assert (await listing(api, "?min_record_days=30"))["total"] == 1

    second = await listing(api, "?sort=price&page=2&page_size=2")
    assert [c["id"] for c in second["items"]] == [good]
    assert (second["page"], second["page_size"], second["total"]) == (2, 2, 3)

    one = (await api.client.get(f"/api/v1/channels/{good}")).json()
    assert one["track_30d"] == card["track_30d"]


async def test_bad_parameters_get_one_plain_400(api: Api) -> None:
    for query, words in [
        ("?sort=best", "sort must be one of"),
        ("?order=sideways", "order must be asc or desc"),
        ("?page=0", "page must be a whole number from 1"),
        ("?page_size=101", "page_size must be a whole number from 1 to 100"),
        ("?min_win_rate=70", "min_win_rate must be a fraction from 0 to 1"),
        ("?max_price=free", "max_price must be an amount"),
    ]:
        reply = await api.client.get(f"/api/v1/channels{query}")
        assert reply.status_code == 400, (query, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["message"].startswith(words), error
