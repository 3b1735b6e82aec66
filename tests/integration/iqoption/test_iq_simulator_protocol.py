"""The IQ Option simulator's wire, spoken raw over real HTTP and WebSocket (no adapter).

The login and its refusals, the ssid's ``profile``, timeSync and heartbeats, purchases
and every refusal status, replies matched by request_id, polling (get-options,
api_game_betinfo), closing pushes to subscribed sockets, the ledger, and each fault
switch. A repeated purchase is a second option: the simulator has no client order id.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

from apps.core.brokers.iqoption import (
    BINARY,
    STATUS_BAD_BALANCE,
    STATUS_BAD_EXPIRY,
    STATUS_BAD_STAKE,
    STATUS_NO_FUNDS,
    STATUS_OK,
    STATUS_SUSPENDED,
    STATUS_TIME_OVER,
    TURBO,
    LegalExpiry,
    LoggedIn,
    LoginLimited,
    LoginRefused,
    Profile,
    SsidRefused,
    TwoFactorRequired,
    legal_expiries,
    read_login,
    read_profile,
    ssid_message,
)
from tests.fixtures.iqoption_sim import (
    REPLY_TIMEOUT,
    Connect,
    IQOptionSim,
    login,
    open_option_message,
    ssid_of,
    status_body,
    turbo_expiry,
)
from tests.fixtures.waiting import wait_for


async def test_login_gives_an_ssid_in_the_body_and_a_cookie(iqoption_sim: IQOptionSim) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    reply = await login(iqoption_sim, account.email, account.password)
    assert reply.status_code == 200
    body = reply.json()
    assert body["code"] == "success"
    ssid = body["data"]["ssid"]
    assert len(ssid) == 32 and int(ssid, 16) >= 0
    assert reply.cookies["ssid"] == ssid
    assert "Max-Age=2592000" in reply.headers["set-cookie"]
    assert read_login(reply.status_code, body) == LoggedIn(ssid=ssid)


async def test_a_wrong_password_is_refused_403(iqoption_sim: IQOptionSim) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    for email, password in ((account.email, "wrong"), ("nobody@example.invalid", "x")):
        reply = await login(iqoption_sim, email, password)
        assert reply.status_code == 403
        assert reply.json() == {
            "code": "invalid_credentials",
            "errors": [{"code": 202, "title": "Invalid credentials"}],
        }
        assert isinstance(read_login(*status_body(reply)), LoginRefused)


async def test_a_two_factor_account_is_asked_to_verify(iqoption_sim: IQOptionSim) -> None:
    (account,) = await iqoption_sim.create_accounts(1, two_factor=True)
    reply = await login(iqoption_sim, account.email, account.password)
    assert reply.status_code == 200
    body = reply.json()
    assert body["code"] == "verify" and body["method"] == "push" and body["token"]
    assert read_login(*status_body(reply)) == TwoFactorRequired(method="push")
    assert "ssid" not in reply.cookies


async def test_the_login_limit_answers_429_with_a_ttl_per_identifier(
    iqoption_sim: IQOptionSim,
) -> None:
    first, second = await iqoption_sim.create_accounts(2)
    await iqoption_sim.set_faults(login_limit=2)
    for _ in range(2):
        assert (await login(iqoption_sim, first.email, first.password)).status_code == 200
    limited = await login(iqoption_sim, first.email, first.password)
    assert limited.status_code == 429
    body = limited.json()
    assert body["errors"] == [{"code": 301, "title": "Login limit exceeded"}]
    assert 0 < body["data"]["ttl"] <= 60
    assert isinstance(read_login(*status_body(limited)), LoginLimited)
    # Per identifier: another account still logs in.
    assert (await login(iqoption_sim, second.email, second.password)).status_code == 200
    await iqoption_sim.set_faults(login_limit=None)
    assert (await login(iqoption_sim, first.email, first.password)).status_code == 200


async def test_the_ssid_is_answered_by_the_profile_with_both_balances(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="250.50")
    client = await iq_connect()
    await client.send(ssid_message(await ssid_of(iqoption_sim, account)))
    message = await client.expect(lambda m: m.get("name") == "profile", "profile")
    profile = read_profile(message["msg"])
    assert isinstance(profile, Profile)
    assert profile.user_id == account.user_id
    practice, real = profile.balance("practice"), profile.balance("real")
    assert practice is not None and practice.id == account.practice_balance_id
    assert real is not None and real.id == account.real_balance_id
    assert practice.amount == real.amount == Decimal("250.50")
    assert message["msg"]["balance_id"] == account.real_balance_id


async def test_a_bad_ssid_is_answered_false_and_closed(iq_connect: Connect) -> None:
    client = await iq_connect()
    await client.send(ssid_message("0" * 32))
    message = await client.expect(lambda m: m.get("name") == "profile", "profile")
    assert read_profile(message["msg"]) == SsidRefused()
    await asyncio.wait_for(client.closed.wait(), REPLY_TIMEOUT)
    assert client.ws.close_code == 1000


async def test_anything_before_the_ssid_closes_the_socket(iq_connect: Connect) -> None:
    client = await iq_connect()
    await client.send({"name": "api_game_betinfo", "request_id": "1", "msg": {"id[0]": 1}})
    await asyncio.wait_for(client.closed.wait(), REPLY_TIMEOUT)
    assert not client.replies("1")


async def test_a_purchase_is_answered_result_then_option_by_request_id(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="100")
    client = await iq_connect(account)
    expiry = turbo_expiry()
    before = time.time()
    option = await client.buy("order-1", account.practice_balance_id, price=2.5, expiry=expiry)
    result, reply = client.replies("order-1")
    assert result == {"name": "result", "request_id": "order-1", "msg": {"success": True}}
    assert reply is option and option["status"] == STATUS_OK
    msg = option["msg"]
    assert msg["user_id"] == account.user_id
    assert msg["price"] == 2.5 and msg["exp"] == expiry.at and msg["act"] == 1
    assert msg["type"] == "turbo" and msg["direction"] == "call"
    assert msg["profit_income"] == 185 and msg["value"] > 0
    assert int(before) <= msg["created"] <= time.time()
    assert await iqoption_sim.balances(account.user_id) == (Decimal("97.50"), Decimal("100"))
    (row,) = await iqoption_sim.ledger()
    assert row["option_id"] == msg["id"] and row["request_id"] == row["order_id"] == "order-1"
    assert row["user_id"] == account.user_id
    assert row["balance_id"] == account.practice_balance_id
    assert row["expired"] == expiry.at and row["price"] == 2.5 and row["status"] == "open"
    assert row["active_id"] == 1 and row["direction"] == "call"
    assert account.password not in json.dumps(row)


async def test_a_repeated_purchase_is_a_second_option(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    first = await client.buy("same", account.real_balance_id)
    await client.send(open_option_message("same", account.real_balance_id))
    second = await client.expect(
        lambda m: m.get("name") == "option" and m["msg"]["id"] != first["msg"]["id"],
        "the second option",
    )
    ledger = await iqoption_sim.ledger()
    assert [r["request_id"] for r in ledger] == ["same", "same"]
    assert {r["option_id"] for r in ledger} == {first["msg"]["id"], second["msg"]["id"]}
    assert {r["balance_id"] for r in ledger} == {account.real_balance_id}


async def test_a_binary_expiry_is_bought_as_binary(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    binary = next(e for e in legal_expiries(time.time()) if e.option_type_id == BINARY)
    option = await client.buy("b", account.practice_balance_id, expiry=binary)
    assert option["status"] == STATUS_OK and option["msg"]["type"] == "binary"
    as_turbo = LegalExpiry(at=binary.at, option_type_id=TURBO)
    refused = await client.buy("t", account.practice_balance_id, expiry=as_turbo)
    assert refused["status"] == STATUS_BAD_EXPIRY


async def test_each_refusal_has_its_status_and_books_nothing(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    account, other = await iqoption_sim.create_accounts(2, balance="10")
    client = await iq_connect(account)
    practice = account.practice_balance_id
    now = time.time()
    soon = LegalExpiry(at=(int(now) // 60 + 1) * 60, option_type_id=TURBO)
    if soon.at - now > 30:  # then the boundary after the 5 turbo ones is no legal expiry
        soon = LegalExpiry(at=soon.at + 5 * 60, option_type_id=TURBO)
        time_over_status = STATUS_BAD_EXPIRY
    else:
        time_over_status = STATUS_TIME_OVER
    cases: list[tuple[dict[str, Any], int]] = [
        ({"price": 11}, STATUS_NO_FUNDS),
        ({"price": 0.5}, STATUS_BAD_STAKE),
        ({"price": 20001}, STATUS_BAD_STAKE),
        ({"price": 1.005}, STATUS_BAD_STAKE),
        ({"active_id": 9999}, STATUS_SUSPENDED),
        (
            {"expiry": LegalExpiry(at=turbo_expiry().at + 30, option_type_id=TURBO)},
            STATUS_BAD_EXPIRY,
        ),
        ({"expiry": soon}, time_over_status),
    ]
    for i, (terms, status) in enumerate(cases):
        option = await client.buy(f"r{i}", practice, **terms)
        assert option["status"] == status, (terms, option)
        assert option["msg"]["message"] and option["msg"]["result"] == {"request_id": None}
        assert [m["name"] for m in client.replies(f"r{i}")] == ["option"]
    for i, balance_id in enumerate((other.practice_balance_id, 12345)):
        assert (await client.buy(f"b{i}", balance_id))["status"] == STATUS_BAD_BALANCE
    assert await iqoption_sim.ledger() == []
    assert await iqoption_sim.balances(account.user_id) == (Decimal("10.00"), Decimal("10.00"))


async def test_the_time_over_refusal_has_the_brokers_text(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    # The minute just begun ends in 30 s or less only in its last half: buy one that has.
    now = time.time()
    past = LegalExpiry(at=(int(now) // 60) * 60, option_type_id=TURBO)
    option = await client.buy("late", account.practice_balance_id, expiry=past)
    assert option["status"] == STATUS_TIME_OVER
    assert option["msg"]["message"] == (
        "Time for purchasing options is over, please try again later."
    )


async def test_an_option_settles_with_pushes_to_subscribed_sockets_and_polling(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="100")
    subscribed = await iq_connect(account)
    await subscribed.send(_subscribe("turbo-option", account.practice_balance_id))
    unsubscribed = await iq_connect(account)
    await iqoption_sim.set_faults(force_outcome="won")
    option = await subscribed.buy("w", account.practice_balance_id, price=10)
    option_id = option["msg"]["id"]
    closed = await subscribed.expect(
        lambda m: m.get("name") == "socket-option-closed", "socket-option-closed"
    )
    assert closed["msg"]["id"] == option_id and closed["msg"]["win"] == "win"
    assert closed["msg"]["sum"] == 10 and closed["msg"]["win_amount"] == 18.5
    assert closed["msg"]["exp"] == option["msg"]["exp"]
    profit = await subscribed.expect(lambda m: m.get("name") == "option-closed", "option-closed")
    assert profit["msg"] == {"option_id": option_id, "profit_amount": 8.5, "amount": 10}
    assert await iqoption_sim.balances(account.user_id) == (Decimal("108.50"), Decimal("100"))
    (row,) = await iqoption_sim.ledger()
    assert row["status"] == "won" and row["profit"] == 8.5
    # Polling on a socket that never subscribed: no push came to it.
    await unsubscribed.send(_bet_info("p", option_id))
    info = await unsubscribed.reply("p", "api_game_betinfo_result")
    assert info["msg"]["isSuccessful"] is True
    assert info["msg"]["result"]["data"][str(option_id)]["win"] == "win"
    assert not [m for m in unsubscribed.received if "closed" in m.get("name", "")]


async def test_lost_and_equal_outcomes(iqoption_sim: IQOptionSim, iq_connect: Connect) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="100")
    client = await iq_connect(account)
    await client.send(_subscribe("turbo-option", None))
    for outcome, win, amount, balance in (
        ("lost", "loose", 0, Decimal("90.00")),
        ("equal", "equal", 10, Decimal("90.00")),
    ):
        await iqoption_sim.set_faults(force_outcome=outcome)
        option = await client.buy(outcome, account.real_balance_id, price=10, direction="put")
        closed = await client.closing(option["msg"]["id"])
        assert closed["msg"]["win"] == win and closed["msg"]["win_amount"] == amount
        assert (await iqoption_sim.balances(account.user_id))[1] == balance
    statuses = [(r["status"], r["profit"]) for r in await iqoption_sim.ledger()]
    assert statuses == [("lost", -10), ("equal", 0)]


async def test_get_options_lists_newest_first_without_request_ids(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    ids = [(await client.buy(f"g{i}", account.practice_balance_id))["msg"]["id"] for i in range(3)]
    await client.buy("other-balance", account.real_balance_id)
    await client.send(_get_options("list", account.practice_balance_id, limit=2))
    listed = (await client.reply("list", "options"))["msg"]["options"]
    assert [o["id"] for o in listed] == ids[:0:-1]
    assert all("request_id" not in o for o in listed)
    assert listed[0]["win"] == "" and listed[0]["active_id"] == 1 and listed[0]["price"] == 1
    await iqoption_sim.set_faults(force_outcome="lost")

    async def all_closed() -> bool:
        await client.send(_get_options("again", account.practice_balance_id, limit=1000))
        rows = (await client.reply("again", "options"))["msg"]["options"]
        client.received = [m for m in client.received if m.get("request_id") != "again"]
        return len(rows) == 3 and all(r["win"] == "loose" for r in rows)

    await wait_for(all_closed, what="the options closed, as get-options lists them")


async def test_bet_info_of_an_unknown_or_foreign_option_is_unsuccessful(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    mine, theirs = await iqoption_sim.create_accounts(2)
    other = await iq_connect(theirs)
    foreign = (await other.buy("f", theirs.practice_balance_id))["msg"]["id"]
    client = await iq_connect(mine)
    for request_id, option_id in (("u", 1), ("x", foreign)):
        await client.send(_bet_info(request_id, option_id))
        info = await client.reply(request_id, "api_game_betinfo_result")
        assert info["msg"]["isSuccessful"] is False


def _subscribe(instrument_type: str, balance_id: int | None) -> dict[str, Any]:
    filters: dict[str, Any] = {"instrument_type": instrument_type}
    if balance_id is not None:
        filters["user_balance_id"] = balance_id
    return {
        "name": "subscribeMessage",
        "request_id": "s",
        "msg": {
            "name": "portfolio.position-changed",
            "version": "2.0",
            "params": {"routingFilters": filters},
        },
    }


def _bet_info(request_id: str, option_id: int) -> dict[str, Any]:
    return {
        "name": "api_game_betinfo",
        "request_id": request_id,
        "msg": {"currency": "USD", "id[0]": option_id},
    }


def _get_options(request_id: str, balance_id: int, limit: int) -> dict[str, Any]:
    return {
        "name": "sendMessage",
        "request_id": request_id,
        "msg": {
            "name": "get-options",
            "version": "1.0",
            "body": {
                "limit": limit,
                "instrument_type": "binary,turbo",
                "user_balance_id": balance_id,
            },
        },
    }
