"""Every shared Redis key keeps its exact string: the keys are data that running services
and stored books already use, so a rename here would orphan them."""

from __future__ import annotations

import pytest

from apps.core.topology import Topology

# (method, arguments, the key without a namespace)
KEYS: list[tuple[str, tuple[str | float | int, ...], str]] = [
    ("routing_key", ("c1",), "copier:routing:c1"),
    ("routing_rebuild_key", ("c1",), "copier:routing-rebuild:c1"),
    ("balances_key", (), "copier:balances"),
    ("broker_account_key", ("ba1",), "copier:broker-account:ba1"),
    ("risk_key", ("sub1", 86400.0, "loss"), "copier:risk:sub1:19700102:loss"),
    ("signal_stats_key", ("s1",), "copier:sig:s1:stats"),
    ("signal_states_key", ("s1",), "copier:sig:s1:states"),
    ("signal_outcomes_key", ("s1",), "copier:sig:s1:outcomes"),
    ("signal_copy_key", ("s1",), "copier:sig:s1:signal"),
    ("channel_stats_key", ("c1",), "copier:chan:c1:stats"),
    ("client_id_key", ("u1", "k1"), "copier:client-id:u1:k1"),
    ("channel_acl_key", ("c1",), "copier:channel-acl:c1"),
    ("revoked_family_key", ("f1",), "copier:revoked-family:f1"),
    ("user_facts_key", ("u1",), "copier:user-facts:u1"),
    ("ip_attempts_key", ("login", "1.2.3.4"), "copier:ratelimit:login:ip:1.2.3.4"),
    ("account_attempts_key", ("login", "ab12"), "copier:ratelimit:login:acct:ab12"),
    ("order_marker_key", ("s1.sub1",), "copier:order:s1.sub1"),
    ("contract_claims_key", ("ba1",), "copier:claims:ba1"),
    ("worker_process_key", ("w1",), "copier:worker:w1"),
    ("settlements_key", ("deriv", "w1"), "copier:settle:deriv:w1"),
    ("settlement_owners_key", ("deriv",), "copier:settle-owners:deriv"),
    ("settlement_alive_key", ("deriv", "w1"), "copier:worker:deriv:w1"),
    ("notify_prefs_generation_key", (), "copier:notify:prefs-gen"),
    ("telegram_link_code_key", ("AB23CD45",), "copier:notify:tg-code:AB23CD45"),
    ("telegram_bot_name_key", (), "copier:notify:tg-bot"),
    ("telegram_poller_key", (), "copier:notify:tg-poller"),
    ("notify_rate_key", ("u1", "email", 28333333), "copier:notify:rate:u1:email:28333333"),
]


@pytest.mark.parametrize(("method", "args", "expected"), KEYS, ids=[k[0] for k in KEYS])
def test_each_shared_key_keeps_its_string(
    method: str, args: tuple[str | float, ...], expected: str
) -> None:
    assert getattr(Topology(), method)(*args) == expected


@pytest.mark.parametrize(("method", "args", "expected"), KEYS, ids=[k[0] for k in KEYS])
def test_a_namespace_takes_the_place_of_the_copier_prefix(
    method: str, args: tuple[str | float, ...], expected: str
) -> None:
    assert getattr(Topology("t1"), method)(*args) == "t1:" + expected.removeprefix("copier:")


def test_every_named_key_is_pinned() -> None:
    named = {name for name in dir(Topology) if name.endswith("_key")}
    assert named == {method for method, _, _ in KEYS}
