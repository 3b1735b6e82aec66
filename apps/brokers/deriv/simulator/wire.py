"""Deriv's reply shapes as the simulator writes them: envelopes and errors.

Every reply echoes the request (``echo_req``), its ``req_id`` and ``passthrough``, and
carries its body under its ``msg_type``, or an ``error`` {code, message, details?}; a
stream's messages add the ``subscription`` id. Nothing here knows the simulator's state
(bodies are made beside it), so every other module of it may import this one.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

ERROR_MESSAGES: dict[str, str] = {
    "InvalidToken": "The token is invalid.",
    "AuthorizationRequired": "Please log in.",
    "PriceMoved": "The underlying market has moved too much since you priced the contract.",
    "InsufficientBalance": "Your account balance is insufficient to buy this contract.",
    "MarketIsClosed": "This market is presently closed.",
    "ContractBuyValidationError": "The contract is not valid.",
    "OfferingsValidationError": "Trading is not offered for this asset.",
    "ContractCreationFailure": "Cannot create contract",
    "InputValidationFailed": "Input validation failed.",
    "RateLimit": "You have reached the rate limit for buy.",
    "InvalidContractProposal": "Unknown contract proposal",
}


class ApiFailure(Exception):
    """An error reply: ``{"error": {"code", "message", "details"?}}``."""

    def __init__(self, code: str, message: str | None = None, details: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, code)
        self.details = details


def as_decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ApiFailure("InputValidationFailed", details={name: "Must be a number."})
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ApiFailure("InputValidationFailed", details={name: "Must be a number."}) from None


def currency_mismatch(currency: Any) -> ApiFailure:
    return ApiFailure("ContractBuyValidationError", f"Currency {currency} is not your account's.")


def envelope(request: dict[str, Any], msg_type: str) -> dict[str, Any]:
    reply: dict[str, Any] = {"echo_req": request, "msg_type": msg_type}
    if "req_id" in request:
        reply["req_id"] = request["req_id"]
    if "passthrough" in request:
        reply["passthrough"] = request["passthrough"]
    return reply


def reply(
    request: dict[str, Any], msg_type: str, body: Any, subscription_id: str | None
) -> dict[str, Any]:
    reply = envelope(request, msg_type)
    reply[msg_type] = body
    if subscription_id is not None:
        reply["subscription"] = {"id": subscription_id}
    return reply


def error_reply(
    request: dict[str, Any], msg_type: str, code: str, message: str, details: Any = None
) -> dict[str, Any]:
    reply = envelope(request, msg_type)
    reply["error"] = {"code": code, "message": message} | ({"details": details} if details else {})
    return reply
