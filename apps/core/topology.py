"""Names of streams, consumers, subjects and Redis keys, optionally under a namespace.

Production runs with an empty namespace, so the names are exactly those in `nats/` and
what ops type into the `nats` CLI. Tests give every test its own namespace so that many
tests share one nats-server without seeing each other's messages.

Every Redis key that services share is named here once, by a method that says what it
holds, so the writer and every reader spell it the same way; the key strings are data on
disk and must not change without a migration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = ""

    def stream(self, base: str) -> str:
        """``SIGNALS`` → ``SIGNALS`` (or ``<ns>_SIGNALS`` in a namespace)."""
        return f"{self.namespace}_{base}" if self.namespace else base

    def subject(self, *parts: str) -> str:
        """``("signals", "c1")`` → ``signals.c1`` (or ``<ns>.signals.c1``)."""
        prefix = (self.namespace,) if self.namespace else ()
        return ".".join((*prefix, *parts))

    def key(self, *parts: str) -> str:
        """A Redis key: ``("routing", "c1")`` → ``copier:routing:c1`` (namespace-prefixed).

        Shared keys are the named methods below; this builds them."""
        return ":".join((self.namespace or "copier", *parts))

    # The Redis keys of the design, in one place.
    def routing_key(self, channel_id: str) -> str:
        """Hash of a channel's routing records (subscription id → record): the API writes
        it, the router reads it."""
        return self.key("routing", channel_id)

    def routing_rebuild_key(self, channel_id: str) -> str:
        """Where a channel's routing hash is built before it is renamed into place."""
        return self.key("routing-rebuild", channel_id)

    def balances_key(self) -> str:
        """Hash of broker account id → last known balance, for percent-of-balance stakes."""
        return self.key("balances")

    def broker_account_key(self, broker_account_id: str) -> str:
        """A broker account's sealed credentials and login, for the broker workers."""
        return self.key("broker-account", broker_account_id)

    def risk_key(self, subscription_id: str, epoch: float, counter: str) -> str:
        """A subscription's daily risk counter (``trades``, or the ``exposure`` hash of
        :mod:`apps.core.exposure`) for the UTC day of ``epoch``; the router takes trades
        and reserves stakes, the ledger releases stakes and adds realised losses."""
        day = time.strftime("%Y%m%d", time.gmtime(epoch))
        return self.key("risk", subscription_id, day, counter)

    def signal_stats_key(self, signal_id: str) -> str:
        """Hash of a signal's counts and timings: the ledger writes it, the API reads it."""
        return self.key("sig", signal_id, "stats")

    def signal_states_key(self, signal_id: str) -> str:
        """Hash of order id → last state of the signal's orders (the ledger's book)."""
        return self.key("sig", signal_id, "states")

    def signal_outcomes_key(self, signal_id: str) -> str:
        """Hash of order id → outcome of the signal's settled orders (the ledger's book)."""
        return self.key("sig", signal_id, "outcomes")

    def signal_copy_key(self, signal_id: str) -> str:
        """The accepted signal, answering reads until its MongoDB record has landed."""
        return self.key("sig", signal_id, "signal")

    def channel_stats_key(self, channel_id: str) -> str:
        """Hash of a channel's running totals (signals, orders …), kept by the ledger."""
        return self.key("chan", channel_id, "stats")

    def client_id_key(self, sender_id: str, client_id: str) -> str:
        """A sender's client-chosen signal id, reserved so a retried send is not doubled."""
        return self.key("client-id", sender_id, client_id)

    def channel_acl_key(self, channel_id: str) -> str:
        """A channel's cached access list (owner, delegates, status) for signal intake."""
        return self.key("channel-acl", channel_id)

    def revoked_family_key(self, family_id: str) -> str:
        """Set when a login session (token family) is revoked; access tokens carry ``fam``."""
        return self.key("revoked-family", family_id)

    def user_facts_key(self, user_id: str) -> str:
        """A user's cached role facts, read with every authenticated request."""
        return self.key("user-facts", user_id)

    def ip_attempts_key(self, action: str, client: str) -> str:
        """Attempts of an auth ``action`` from one client address, for rate limiting."""
        return self.key("ratelimit", action, "ip", client)

    def account_attempts_key(self, action: str, account: str) -> str:
        """Attempts of an auth ``action`` on one account (a digest of its email)."""
        return self.key("ratelimit", action, "acct", account)

    def order_marker_key(self, order_id: str) -> str:
        """An order's marker: which worker holds it and how far it got with the broker."""
        return self.key("order", order_id)

    def contract_claims_key(self, broker_account_id: str) -> str:
        """Hash of contract id → order id for one broker account: which order owns which
        contract."""
        return self.key("claims", broker_account_id)

    def worker_process_key(self, worker_id: str) -> str:
        """The incarnation of the process that holds a worker id (a lease)."""
        return self.key("worker", worker_id)

    def settlements_key(self, broker_kind: str, worker_id: str) -> str:
        """Hash of one worker's placed contracts waiting for their outcome."""
        return self.key("settle", broker_kind, worker_id)

    def settlement_owners_key(self, broker_kind: str) -> str:
        """Set of the worker ids that have settlements of one broker kind to follow."""
        return self.key("settle-owners", broker_kind)

    def settlement_alive_key(self, broker_kind: str, worker_id: str) -> str:
        """Present while a worker follows its settlements; others adopt them once it is
        gone."""
        return self.key("worker", broker_kind, worker_id)

    def notify_prefs_generation_key(self) -> str:
        """Bumped by the API on every change of notification preferences; the notifier
        drops its cache when it moved."""
        return self.key("notify", "prefs-gen")

    def telegram_link_code_key(self, code: str) -> str:
        """A one-time Telegram link code → the user it links (expires)."""
        return self.key("notify", "tg-code", code)

    def telegram_bot_name_key(self) -> str:
        """The bot's username, as the notifier read it from getMe (the link's address)."""
        return self.key("notify", "tg-bot")

    def telegram_poller_key(self) -> str:
        """The lease of the one notifier that reads the bot's updates."""
        return self.key("notify", "tg-poller")

    def notify_rate_key(self, user_id: str, channel: str, minute: int) -> str:
        """A user's deliveries on one channel in one minute (the rate limit's count)."""
        return self.key("notify", "rate", user_id, channel, str(minute))

    # The subjects of the design, in one place.
    def signal_subject(self, channel_id: str) -> str:
        return self.subject("signals", channel_id)

    def order_subject(self, broker_kind: str, shard: int) -> str:
        return self.subject("orders", broker_kind, str(shard))

    def execution_subject(self, channel_id: str, signal_id: str) -> str:
        return self.subject("executions", channel_id, signal_id)
