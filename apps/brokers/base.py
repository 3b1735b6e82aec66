"""The broker interface every broker kind implements, and the values that cross it.

The runner (shared worker loop) talks to every broker through :class:`BrokerAdapter`.
Errors are values here: an adapter never raises through the runner, it returns one of the
outcome Structs below, so every order ends in a visible state (see ARCHITECTURE.md,
"Every order ends in one visible final state").
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal, Protocol

import msgspec

from apps.core.assets import Expiry

Direction = Literal["CALL", "PUT"]


class BrokerAccount(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A subscriber's account at a broker, with the credential that opens a session.

    ``login`` is the broker's account id when known (Deriv ``loginid``; IQ Option the
    e-mail the account logs in with); it is learnt at authorisation otherwise. ``token``
    (Deriv's API token, IQ Option's ssid when one was given) and ``password`` are secrets
    and never go into logs or passthrough. ``balance_type`` says which of an IQ Option
    account's balances to trade ("practice" or "real"); Deriv accounts have one.
    """

    token: str = ""
    login: str = ""
    password: str = ""
    currency: str = "USD"
    balance_type: str = ""

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"BrokerAccount(login={self.login!r}, currency={self.currency!r})"


class OrderRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """One subscriber's trade for one signal, as the router produced it."""

    order_id: str
    signal_id: str
    channel_id: str
    account: BrokerAccount
    asset: str  # canonical name, see apps.core.assets
    direction: Direction
    expiry: Expiry
    # Epoch seconds the contract ends, for brokers whose contracts end at a set instant
    # (IQ Option): chosen by the router's per-broker rules, carried on the order.
    expiry_at: int | None = None
    stake: Decimal
    currency: str = "USD"
    valid_until: float  # epoch seconds; nothing is placed after it


class Placed(msgspec.Struct, gc=False, frozen=True, kw_only=True, tag="placed"):
    """A contract the broker sold for the order.

    The optional fields are what only the broker knows, filled when its reply says them
    (``None`` otherwise, never guessed): ``entry_spot`` the price the contract starts
    from, ``expiry_at`` the epoch second it ends, ``balance_after`` the account's balance
    right after the buy.
    """

    order_id: str
    contract_id: str
    buy_price: Decimal
    payout: Decimal
    purchase_time: int
    broker_ref: str  # the broker's transaction id
    reconciled: bool = False  # found by reconciliation after a lost reply
    entry_spot: Decimal | None = None
    expiry_at: int | None = None
    balance_after: Decimal | None = None


class Rejected(msgspec.Struct, gc=False, frozen=True, kw_only=True, tag="rejected"):
    """Permanent: retrying cannot help (bad token, stake too low, market closed...).

    ``account_refused``: the broker refused the account's credentials (a revoked token, a
    changed password), so every later order on the account would fail the same way until
    the subscriber links it again.
    """

    order_id: str
    code: str
    message: str
    account_refused: bool = False


class TransientFailure(msgspec.Struct, gc=False, frozen=True, kw_only=True, tag="transient"):
    """Nothing was bought, and trying again after ``retry_after`` seconds may succeed."""

    order_id: str
    code: str
    message: str
    retry_after: float = 0.0


class Uncertain(msgspec.Struct, gc=False, frozen=True, kw_only=True, tag="uncertain"):
    """A buy may or may not have happened and reconciliation could not tell.

    Never retried: the runner reports the order ``unknown`` rather than risk buying twice.
    """

    order_id: str
    message: str


class Expired(msgspec.Struct, gc=False, frozen=True, kw_only=True, tag="expired"):
    """The signal's validity ran out before the order could be placed."""

    order_id: str
    last_code: str = ""
    last_message: str = ""


PlaceOutcome = Placed | Rejected | TransientFailure | Uncertain | Expired


class Found(msgspec.Struct, frozen=True, kw_only=True, tag="found"):
    placed: Placed


class NotFound(msgspec.Struct, frozen=True, kw_only=True, tag="not_found"):
    """The broker holds no contract for this order: placing it now cannot duplicate it."""


class Undecidable(msgspec.Struct, frozen=True, kw_only=True, tag="undecidable"):
    reason: str


ReconcileResult = Found | NotFound | Undecidable


class Settlement(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """How a contract ended; the optional fields are filled when the broker says them:
    the spots it started from and ended at, the instant it ended and the account's
    balance afterwards."""

    contract_id: str
    outcome: Literal["won", "lost"]
    buy_price: Decimal
    sell_price: Decimal
    profit: Decimal
    sell_time: int
    entry_spot: Decimal | None = None
    exit_spot: Decimal | None = None
    expiry_at: int | None = None
    balance_after: Decimal | None = None


class SettlementUnavailable(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Following the contract failed (e.g. the account's token stopped working)."""

    contract_id: str
    message: str


SettlementResult = Settlement | SettlementUnavailable
OnSettled = Callable[[SettlementResult], None]


class SettlementWatch(Protocol):
    """What :meth:`BrokerAdapter.watch_settlement` returns: stop watching (no callback)."""

    def cancel(self) -> object: ...


class ContractClaims(Protocol):
    """Which order owns which contract on one broker account, shared by every worker."""

    async def owners(self, contract_ids: Sequence[str]) -> dict[str, str]:
        """Contract id → owning order id, for those of ``contract_ids`` that have one."""
        ...

    async def claim(self, contract_id: str) -> bool:
        """Make the contract this order's; ``False`` if another order got it first."""
        ...


class BrokerAdapter(ABC):
    """What a broker worker needs from a broker kind.

    Implementations keep one authorised session per broker account open and reuse it.
    Every method returns values; none raises for broker or network trouble.
    """

    kind: str

    @abstractmethod
    async def connect(self, account: BrokerAccount) -> Rejected | TransientFailure | None:
        """Open (or reuse) the account's session; ``None`` when it is ready."""

    @abstractmethod
    async def place(self, order: OrderRequest) -> PlaceOutcome:
        """One placement attempt. A lost reply is reconciled before this returns."""

    async def place_many(self, orders: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Place several orders; brokers with a batch call override this."""
        return list(await asyncio.gather(*(self.place(o) for o in orders)))

    @abstractmethod
    async def reconcile(
        self, order: OrderRequest, claims: ContractClaims | None = None
    ) -> ReconcileResult:
        """Does the broker hold a contract bought for this order?

        Brokers that cannot tag a contract with our order id (Deriv's portfolio has no
        passthrough) match by terms. Contracts that ``claims`` (shared by every worker)
        says belong to other orders are not candidates; exactly one remaining match is
        this order's, several are undecidable — a contract bought by hand with the same
        terms must never be passed off as the copier's.
        """

    @abstractmethod
    async def follow_settlement(
        self, account: BrokerAccount, contract_id: str
    ) -> Settlement | SettlementUnavailable:
        """Wait until the contract is settled and say how it ended."""

    def watch_settlement(
        self,
        account: BrokerAccount,
        contract_id: str,
        expires_at: float,
        on_settled: OnSettled,
    ) -> SettlementWatch:
        """Call ``on_settled`` once, when the contract has settled (or cannot be followed).

        ``expires_at`` (epoch seconds) is when the contract is due to end; a broker with
        account-wide streams may look the contract up directly if no word came by then.
        This default follows each contract on its own; adapters of brokers that stream
        every contract of an account override it, so that thousands of open contracts
        cost one stream per account instead of one per contract.
        """

        async def follow() -> None:
            on_settled(await self.follow_settlement(account, contract_id))

        return asyncio.create_task(follow(), name=f"settle-{contract_id}")

    @abstractmethod
    async def close(self) -> None:
        """Close every session."""


async def place_until_valid(
    adapter: BrokerAdapter,
    order: OrderRequest,
    *,
    clock: Callable[[], float] = time.time,
    max_pause: float = 2.0,
) -> PlaceOutcome:
    """Place ``order``, retrying transient failures while the signal is still valid.

    Transient failures are retried after the adapter's ``retry_after`` (a rate-limit
    cooldown, a reconnect backoff); when the next attempt would start after
    ``valid_until`` the order ends :class:`Expired` with the last reason, so a stale
    signal is never traded.
    """
    last: TransientFailure | None = None
    while True:
        if clock() >= order.valid_until:
            return Expired(
                order_id=order.order_id,
                last_code=last.code if last else "",
                last_message=last.message if last else "signal expired before placement",
            )
        outcome = await adapter.place(order)
        if not isinstance(outcome, TransientFailure):
            return outcome
        last = outcome
        pause = min(max(outcome.retry_after, 0.0), max_pause)
        if clock() + pause >= order.valid_until:
            return Expired(order_id=order.order_id, last_code=last.code, last_message=last.message)
        await asyncio.sleep(pause)
