"""Signing out everywhere reaches every open socket of the account at once, not at the
next periodic re-check; sockets of other accounts, and of sessions not revoked, stay."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from apps.api.signals import ws as ws_module
from tests.fixtures.live_api import Api, ApiServer
from tests.integration.signals.test_signal_intake import connect_ws


async def _ended(ws: Any) -> tuple[dict[str, Any], int]:
    """The last message before the socket closed, and its close code."""
    last: dict[str, Any] = {}
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            last = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert closed.value.rcvd is not None
    return last, closed.value.rcvd.code


async def test_sign_out_everywhere_closes_every_socket_of_the_account_at_once(
    api_server: ApiServer, http: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The periodic re-check would take an hour: only the announcement can close these.
    monkeypatch.setattr(ws_module, "RECHECK_EVERY", 3600.0)
    email_user = await http.user("subscriber", "everywhere")
    phone = await http.login(email_user.email)  # a second device: another session
    bystander = await http.user("subscriber", "bystander")
    laptop_ws = await connect_ws(api_server, email_user.access_token)
    phone_ws = await connect_ws(api_server, phone.access_token)
    other_ws = await connect_ws(api_server, bystander.access_token)

    await http.ok("POST", "/api/v1/auth/logout-all", email_user)

    for socket in (laptop_ws, phone_ws):
        last, code = await _ended(socket)
        assert last["type"] == "error" and last["error"]["code"] == "session_ended"
        assert code == 4401
    # Another account's socket is untouched: it still answers.
    await other_ws.send(json.dumps({"type": "ping", "ref": "still-here"}))
    while (answer := json.loads(await asyncio.wait_for(other_ws.recv(), 30)))["type"] != "pong":
        pass
    assert answer["ref"] == "still-here"
    await other_ws.close()


async def test_signing_out_one_device_leaves_the_other_devices_socket_open(
    api_server: ApiServer, http: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "RECHECK_EVERY", 3600.0)
    laptop = await http.user("subscriber", "onedevice")
    phone = await http.login(laptop.email)
    laptop_ws = await connect_ws(api_server, laptop.access_token)
    phone_ws = await connect_ws(api_server, phone.access_token)

    await http.ok("POST", "/api/v1/auth/logout", laptop)

    last, code = await _ended(laptop_ws)
    assert (last["error"]["code"], code) == ("session_ended", 4401)
    await phone_ws.send(json.dumps({"type": "ping", "ref": "phone"}))
    while (answer := json.loads(await asyncio.wait_for(phone_ws.recv(), 30)))["type"] != "pong":
        pass
    assert answer["ref"] == "phone"
    await phone_ws.close()
