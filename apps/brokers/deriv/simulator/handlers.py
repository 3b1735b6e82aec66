"""The Deriv API v3 calls the simulator answers, one function each (:data:`HANDLERS`).

A handler validates the request as Deriv does, acts on the simulator's state and returns
the reply body with the stream it opened, or raises :class:`ApiFailure` for an error
reply. Every call is synchronous; the simulator dispatches to them and writes the reply.
A buy consults the fault switches here: an injected error before anything is booked, a
reply lost after the booking.

The calls see the simulator through :class:`Simulator`, exactly what they use of it, so
this module does not import the broker that imports it (the broker satisfies the
protocol, checked by the type checker where it dispatches).
"""

from __future__ import annotations

import bisect
import random
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from apps.brokers.deriv.simulator.config import SimConfig, SymbolConfig
from apps.brokers.deriv.simulator.connection import Connection, Subscription
from apps.brokers.deriv.simulator.contracts import (
    CENT,
    Account,
    BuyPlan,
    Contract,
    Terms,
    by_purchase_time,
)
from apps.brokers.deriv.simulator.market import PriceFeed
from apps.brokers.deriv.simulator.wire import (
    ApiFailure,
    as_decimal,
    currency_mismatch,
    reply,
)
from apps.brokers.simulation import Faults

TOKEN_PATTERN = re.compile(r"^[\w\-]{1,128}$")

CATEGORY_OF: dict[str, str] = {
    "portfolio": "outcome",
    "statement": "outcome",
    "profit_table": "outcome",
    "proposal": "pricing",
    "proposal_open_contract": "pricing",
}
# Calls answered without counting: the keep-alive must never be what trips a limit.
UNCOUNTED = frozenset({"ping", "forget", "forget_all", "website_status"})


class Simulator(Protocol):
    """What the calls read and change of the simulator's state, and what they ask of it."""

    config: SimConfig
    faults: Faults
    feed: PriceFeed
    rng: random.Random
    stats: dict[str, int]
    accounts: dict[str, Account]
    by_token: dict[str, Account]
    proposals: dict[str, Terms]
    contracts: dict[int, Contract]
    open_of: dict[str, dict[int, Contract]]
    sold_of: dict[str, list[Contract]]

    def set_login(self, conn: Connection, loginid: str | None) -> None: ...

    def is_open(self, cfg: SymbolConfig) -> bool: ...

    def subscribe(
        self, conn: Connection, req: dict[str, Any], kind: str, contract_id: int | None = None
    ) -> Subscription: ...

    def book(self, account: Account, terms: Terms, passthrough: Any) -> Contract: ...


Handled = tuple[Any, Subscription | None]
# A handler's body when the reply is lost on purpose (a fault switch dropped the peer).
NO_REPLY: Any = object()


def _require_login(sim: Simulator, conn: Connection) -> Account:
    if conn.loginid is None:
        raise ApiFailure("AuthorizationRequired")
    return sim.accounts[conn.loginid]


def _authorize(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    token = req.get("authorize")
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        raise ApiFailure("InputValidationFailed", details={"authorize": "Invalid token."})
    account = sim.by_token.get(token)
    if account is None:
        raise ApiFailure("InvalidToken")
    sim.set_login(conn, account.loginid)
    return {
        "loginid": account.loginid,
        "currency": account.currency,
        "balance": account.balance,
        "is_virtual": int(account.is_virtual),
        "email": f"{account.loginid.lower()}@example.invalid",
        "fullname": f"Simulated {account.loginid}",
        "country": "id",
        "landing_company_name": "virtual" if account.is_virtual else "svg",
        "scopes": ["read", "trade"],
        "account_list": [
            {
                "loginid": account.loginid,
                "currency": account.currency,
                "is_virtual": int(account.is_virtual),
            }
        ],
        "user_id": int(account.loginid[2:]) if account.loginid[2:].isdigit() else 1,
    }, None


def _ping(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    return "pong", None


def _website_status(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    limits = sim.config.rate_limits

    def per(category: str, seconds: float) -> int:
        return next((n for n, w in limits.get(category, []) if w == seconds), 0)

    return {
        "site_status": "up",
        "api_call_limits": {
            "max_proposal_subscription": {
                "applies_to": "subscribing to proposal concurrently",
                "max": sim.config.max_proposal_subscriptions,
            },
            "max_requestes_general": {  # (sic), as Deriv spells it
                "applies_to": "rest of calls",
                "hourly": per("general", 3600),
                "minutely": per("general", 60),
            },
            "max_requests_outcome": {
                "applies_to": "portfolio, statement and proposal",
                "hourly": per("outcome", 3600),
                "minutely": per("outcome", 60),
            },
            "max_requests_pricing": {
                "applies_to": "proposal and proposal_open_contract",
                "hourly": per("pricing", 3600),
                "minutely": per("pricing", 60),
            },
        },
        "currencies_config": {"USD": {"fractional_digits": 2, "type": "fiat", "is_suspended": 0}},
    }, None


def _contracts_for(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    symbol = req.get("contracts_for")
    cfg = sim.config.symbols.get(symbol) if isinstance(symbol, str) else None
    if cfg is None or not isinstance(symbol, str):
        raise ApiFailure("InvalidSymbol", "Symbol is not supported.")
    available = []
    for contract_type, display in (("CALL", "Higher"), ("PUT", "Lower")):
        if cfg.min_ticks is not None:
            available.append(
                _offering(
                    symbol,
                    cfg,
                    contract_type,
                    display,
                    "tick",
                    f"{cfg.min_ticks}t",
                    f"{cfg.max_ticks}t",
                )
            )
        available.append(
            _offering(
                symbol,
                cfg,
                contract_type,
                display,
                "intraday",
                f"{cfg.min_seconds}s",
                "1d" if cfg.max_seconds >= 86_400 else f"{cfg.max_seconds}s",
            )
        )
    now = int(time.time())
    return {
        "available": available,
        "close": now + 3600 if sim.is_open(cfg) else now,
        "open": now - 3600 if sim.is_open(cfg) else now + 3600,
        "feed_license": "realtime",
        "hit_count": len(available),
        "spot": sim.feed.spot(symbol),
    }, None


def _balance(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    account = _require_login(sim, conn)
    sub = sim.subscribe(conn, req, "balance") if req.get("subscribe") == 1 else None
    return account.balance_body(), sub


def _proposal(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    terms = _terms(sim, req, sim.accounts.get(conn.loginid or ""))
    proposal_id = secrets.token_hex(16)
    sim.proposals[proposal_id] = terms
    sub = None
    if req.get("subscribe") == 1:
        if conn.proposal_streams >= sim.config.max_proposal_subscriptions:
            raise ApiFailure("RateLimit", "You have reached the limit of proposal streams.")
        sub = sim.subscribe(conn, req, "proposal")
    ask = terms.ask_price
    symbol = terms.symbol
    return {
        "id": proposal_id,
        "ask_price": ask,
        "display_value": f"{ask:.2f}",
        "payout": terms.payout,
        "spot": sim.feed.spot(symbol),
        "spot_time": int(time.time()),
        "date_start": int(time.time()),
        "longcode": f"Win payout if {symbol} is strictly "
        f"{'higher' if terms.contract_type == 'CALL' else 'lower'} than entry spot.",
    }, sub


def _buy(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    account = _require_login(sim, conn)
    _injected_failure(sim)
    terms = _terms_for(_plan_buy(sim, req, single_use=True), account)
    if isinstance(terms, ApiFailure):
        raise terms
    contract = sim.book(account, terms, req.get("passthrough"))
    if sim.faults.take_drop_mid_buy():
        # The sale is booked; the reply is lost with the connection (fault switch).
        sim.stats["drops"] += 1
        conn.drop(1011, "dropped mid-buy")
        return NO_REPLY, None
    sub = None
    if req.get("subscribe") == 1:
        sub = sim.subscribe(conn, req, "proposal_open_contract", contract.contract_id)
    return {"balance_after": account.balance, **contract.receipt()}, sub


def _buy_multiple(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    _require_login(sim, conn)
    tokens = req.get("tokens")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise ApiFailure("InputValidationFailed", details={"tokens": "Must be a list."})
    _injected_failure(sim)
    plan = _plan_buy(sim, req, single_use=False)  # validated and priced once
    passthrough = req.get("passthrough")
    results: list[dict[str, Any]] = []
    for token in tokens:
        account = sim.by_token.get(token)
        if account is None:
            results.append(
                {"code": "InvalidToken", "message_to_client": "Invalid token", "token": token}
            )
            continue
        terms = _terms_for(plan, account)
        if isinstance(terms, ApiFailure):
            results.append({"code": terms.code, "message_to_client": terms.message, "token": token})
            continue
        contract = sim.book(account, terms, passthrough)
        results.append({**contract.receipt(), "token": token})
    if not isinstance(req.get("parameters"), dict):  # a proposal id is single-use
        sim.proposals.pop(str(req.get("buy_contract_for_multiple_accounts")), None)
    if sim.faults.take_drop_mid_buy():
        sim.stats["drops"] += 1
        conn.drop(1011, "dropped mid-buy")
        return NO_REPLY, None
    return {"result": results}, None


def _proposal_open_contract(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    account = _require_login(sim, conn)
    contract_id = req.get("contract_id")
    if contract_id is not None:
        contract = sim.contracts.get(contract_id) if isinstance(contract_id, int) else None
        if contract is None or contract.loginid != account.loginid:
            raise ApiFailure(
                "ContractNotFound", "This contract was not found among your open positions."
            )
        sub = None
        if req.get("subscribe") == 1 and not contract.is_sold:
            sub = sim.subscribe(conn, req, "proposal_open_contract", contract.contract_id)
        return contract.open_contract(), sub
    # Without contract_id: one message per open contract; the first is the reply.
    open_ones = list(sim.open_of.get(account.loginid, {}).values())
    sub = sim.subscribe(conn, req, "proposal_open_contract") if req.get("subscribe") == 1 else None
    stream = None if sub is None else sub.id
    for contract in open_ones[1:]:
        conn.push(reply(req, "proposal_open_contract", contract.open_contract(), stream))
    return (open_ones[0].open_contract() if open_ones else {}), sub


def _portfolio(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    account = _require_login(sim, conn)
    contracts = [
        {
            "app_id": 1,
            "buy_price": c.buy_price,
            "contract_id": c.contract_id,
            "contract_type": c.contract_type,
            "currency": c.currency,
            "date_start": c.purchase_time,
            "expiry_time": c.date_expiry,
            "longcode": c.longcode,
            "payout": c.payout,
            "purchase_time": c.purchase_time,
            "shortcode": c.shortcode,
            "symbol": c.symbol,
            "transaction_id": c.buy_transaction_id,
        }
        for c in sim.open_of.get(account.loginid, {}).values()
    ]
    return {"contracts": contracts}, None


def _profit_table(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    account = _require_login(sim, conn)
    date_from = req.get("date_from")
    date_to = req.get("date_to")
    # Sold contracts in purchase order; purchase times only grow along it, so the
    # date range is found by bisection and the page by index, never by a full scan.
    sold = sim.sold_of.get(account.loginid, [])
    low = (
        bisect.bisect_left(sold, date_from, key=by_purchase_time)
        if isinstance(date_from, int)
        else 0
    )
    high = (
        bisect.bisect_right(sold, date_to, key=by_purchase_time)
        if isinstance(date_to, int)
        else len(sold)
    )
    rows = range(low, high)  # sliced exactly like the list of those rows would be
    if req.get("sort", "DESC") == "DESC":
        rows = rows[::-1]
    offset = req.get("offset", 0) if isinstance(req.get("offset"), int) else 0
    limit = req.get("limit", 50) if isinstance(req.get("limit"), int) else 50
    page = [sold[i] for i in rows[offset : offset + min(limit, 500)]]
    describe = req.get("description") == 1
    transactions = [
        {
            "app_id": 1,
            "buy_price": c.buy_price,
            "contract_id": c.contract_id,
            "contract_type": c.contract_type,
            "payout": c.payout,
            "purchase_time": c.purchase_time,
            "sell_price": c.sell_price,
            "sell_time": c.sell_time,
            "transaction_id": c.buy_transaction_id,
        }
        | ({"shortcode": c.shortcode, "longcode": c.longcode} if describe else {})
        for c in page
    ]
    return {"count": len(transactions), "transactions": transactions}, None


def _forget(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    return int(conn.end_stream(str(req.get("forget"))) is not None), None


def _forget_all(sim: Simulator, conn: Connection, req: dict[str, Any]) -> Handled:
    kinds = req.get("forget_all")
    wanted = {kinds} if isinstance(kinds, str) else set(kinds or [])
    gone = [sid for sid, s in conn.subscriptions.items() if s.kind in wanted]
    for sid in gone:
        conn.end_stream(sid)
    return gone, None


# buying -----------------------------------------------------------------------------


def _injected_failure(sim: Simulator) -> None:
    code = sim.faults.take_error(sim.rng, "ContractCreationFailure")
    if code is not None:
        raise ApiFailure(code)


def _terms(sim: Simulator, params: dict[str, Any], account: Account | None) -> Terms:
    """Validate contract parameters and price them (the shared core of proposal/buy)."""
    contract_type, symbol, cfg = _offered(sim, params)
    currency = params["currency"]
    if account is not None and currency != account.currency:
        raise currency_mismatch(currency)
    return _priced(sim, params, contract_type, symbol, cfg)


def _offered(sim: Simulator, params: dict[str, Any]) -> tuple[str, str, SymbolConfig]:
    """The checks before the account's currency: fields, contract type, asset, hours."""
    missing = [k for k in ("contract_type", "currency", "symbol") if k not in params]
    if missing:
        raise ApiFailure(
            "InputValidationFailed",
            f"Input validation failed: {', '.join(missing)}",
            {k: "Missing required field." for k in missing},
        )
    contract_type = params["contract_type"]
    if contract_type not in ("CALL", "PUT", "CALLE", "PUTE"):
        raise ApiFailure("InputValidationFailed", details={"contract_type": "Not allowed."})
    symbol = params["symbol"]
    cfg = sim.config.symbols.get(symbol) if isinstance(symbol, str) else None
    if cfg is None:
        raise ApiFailure("OfferingsValidationError", "Trading is not offered for this asset.")
    if not sim.is_open(cfg):
        raise ApiFailure("MarketIsClosed")
    return contract_type, symbol, cfg


def _priced(
    sim: Simulator, params: dict[str, Any], contract_type: str, symbol: str, cfg: SymbolConfig
) -> Terms:
    """The checks after the account's currency: duration, amount, basis, stake."""
    duration = params.get("duration")
    unit = params.get("duration_unit", "s")
    if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
        raise ApiFailure("InputValidationFailed", details={"duration": "Must be positive."})
    seconds: float
    if unit == "t":
        if cfg.min_ticks is None or not cfg.min_ticks <= duration <= cfg.max_ticks:
            raise ApiFailure(
                "OfferingsValidationError", "Trading is not offered for this duration."
            )
        seconds = duration * cfg.tick_seconds
    elif unit in ("s", "m", "h", "d"):
        seconds = duration * {"s": 1, "m": 60, "h": 3600, "d": 86_400}[unit]
        if not cfg.min_seconds <= seconds <= cfg.max_seconds:
            raise ApiFailure(
                "OfferingsValidationError", "Trading is not offered for this duration."
            )
    else:
        raise ApiFailure("InputValidationFailed", details={"duration_unit": "Not allowed."})
    amount = as_decimal(params.get("amount"), "amount").quantize(CENT)
    basis = params.get("basis", "stake")
    rate = 1 + sim.config.payout_rate
    if basis == "stake":
        stake, payout = amount, (amount * rate).quantize(CENT)
    elif basis == "payout":
        stake, payout = (amount / rate).quantize(CENT), amount
    else:
        raise ApiFailure("InputValidationFailed", details={"basis": "Not allowed."})
    if stake < cfg.min_stake:
        raise ApiFailure(
            "ContractBuyValidationError",
            f"Please enter a stake amount that's at least {cfg.min_stake}.",
        )
    if stake > cfg.max_stake:
        raise ApiFailure("ContractBuyValidationError", f"Maximum stake allowed is {cfg.max_stake}.")
    return Terms(
        contract_type=contract_type,
        currency=params["currency"],
        symbol=symbol,
        duration=duration,
        duration_unit=unit,
        seconds=seconds,
        ask_price=stake,
        payout=payout,
    )


def _plan_buy(sim: Simulator, req: dict[str, Any], *, single_use: bool) -> BuyPlan:
    """Everything of a buy that does not depend on the account, done once."""
    key = "buy" if "buy" in req else "buy_contract_for_multiple_accounts"
    try:
        if "price" not in req:
            raise ApiFailure("InputValidationFailed", details={"price": "Missing required field."})
        price = as_decimal(req.get("price"), "price")
        params = req.get("parameters")
        if not isinstance(params, dict):
            proposal_id = str(req.get(key))
            stored = sim.proposals.get(proposal_id)
            if stored is None:
                raise ApiFailure("InvalidContractProposal")
            if single_use:
                del sim.proposals[proposal_id]
            # Re-check what may have changed since pricing (market hours, currency).
            params = stored.as_stake_params()
        contract_type, symbol, cfg = _offered(sim, params)
    except ApiFailure as failure:
        return BuyPlan(failure=failure)
    plan = BuyPlan(currency=params["currency"])
    try:
        terms = _priced(sim, params, contract_type, symbol, cfg)
        if price < terms.ask_price:
            raise ApiFailure(
                "PriceMoved",
                f"The underlying market has moved too much since you priced the contract. "
                f"The contract price has changed from {price} to {terms.ask_price}.",
            )
    except ApiFailure as failure:
        plan.late_failure = failure
    else:
        plan.terms = terms
    return plan


def _terms_for(plan: BuyPlan, account: Account) -> Terms | ApiFailure:
    """The plan's terms for one account, or why that account cannot buy them."""
    if plan.failure is not None:
        return plan.failure
    if plan.currency != account.currency:
        return currency_mismatch(plan.currency)
    if plan.late_failure is not None:
        return plan.late_failure
    terms = plan.terms
    assert terms is not None
    if account.balance < terms.ask_price:
        return ApiFailure(
            "InsufficientBalance",
            f"Your account balance ({account.currency}{account.balance}) is insufficient "
            f"to buy this contract ({account.currency}{terms.ask_price}).",
        )
    return terms


HANDLERS: dict[str, Callable[[Simulator, Connection, dict[str, Any]], Handled]] = {
    "authorize": _authorize,
    "ping": _ping,
    "website_status": _website_status,
    "contracts_for": _contracts_for,
    "balance": _balance,
    "proposal_open_contract": _proposal_open_contract,
    "proposal": _proposal,
    "buy_contract_for_multiple_accounts": _buy_multiple,
    "buy": _buy,
    "portfolio": _portfolio,
    "profit_table": _profit_table,
    "forget_all": _forget_all,
    "forget": _forget,
}


def _offering(
    symbol: str,
    cfg: SymbolConfig,
    contract_type: str,
    display: str,
    expiry_type: str,
    min_duration: str,
    max_duration: str,
) -> dict[str, Any]:
    return {
        "barrier_category": "euro_atm",
        "barriers": 0,
        "contract_category": "callput",
        "contract_category_display": "Up/Down",
        "contract_display": display,
        "contract_type": contract_type,
        "exchange_name": "RANDOM" if cfg.market == "synthetic_index" else "FOREX",
        "expiry_type": expiry_type,
        "market": cfg.market,
        "max_contract_duration": max_duration,
        "min_contract_duration": min_duration,
        "sentiment": "up" if contract_type == "CALL" else "down",
        "start_type": "spot",
        "submarket": "random_index" if cfg.market == "synthetic_index" else "major_pairs",
        "underlying_symbol": symbol,
    }
