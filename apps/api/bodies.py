"""Every JSON body the API reads is decoded here, strictly, into its declared Struct.

Litestar converts decoded bodies with msgspec's lax rules (``"60"`` for an integer) and
lets invalid UTF-8 escape as a 500. :class:`StrictJsonRequest` (the app's request class)
decodes the raw body straight into the handler's ``data`` type instead: integers only from
JSON integers, booleans only from JSON booleans, money by :func:`apps.api.money.parse_money`.
A body that does not fit is a 400 ``validation_failed`` in plain words naming the field
(:func:`apps.api.errors.plain_validation`), and every undecodable body (invalid UTF-8,
malformed JSON, no body where one is needed) is a 400 in the API's one error body.
The WebSocket decodes its messages with the same :func:`decoder_for`.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from litestar import Request
from litestar.types import Empty

from apps.api.errors import BadRequest, plain_validation
from apps.api.money import Money, parse_money


def _decode_custom(kind: type, value: Any) -> Any:
    if kind is Money:
        return parse_money(value)
    raise NotImplementedError(kind)


@functools.cache
def decoder_for(kind: Any) -> msgspec.json.Decoder[Any]:
    """One decoder per body type; JSON fractions reach money fields as their own text."""
    return msgspec.json.Decoder(kind, dec_hook=_decode_custom, float_hook=str)


def decode_body(body: bytes, kind: Any) -> Any:
    """``body`` as ``kind``, or :class:`BadRequest` in plain words."""
    try:
        # The whole body, first: msgspec reports an unknown field before looking at its
        # value, and skips the values of fields a type ignores.
        body.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest("the request body is not valid UTF-8", code="malformed_body") from exc
    try:
        return decoder_for(kind).decode(body or b"null")
    except msgspec.ValidationError as exc:
        if not body:
            raise BadRequest("the request needs a JSON body", code="malformed_body") from exc
        message, key = plain_validation(str(exc), kind)
        raise BadRequest(
            message,
            code="validation_failed",
            details=[{"key": key, "message": message, "source": "body"}],
        ) from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(
            "the request body is not valid JSON", code="malformed_body", details=str(exc)
        ) from exc


class StrictJsonRequest(Request[Any, Any, Any]):
    """A request whose JSON body is decoded by :func:`decode_body` into the handler's type."""

    async def json(self) -> Any:
        if self._json is Empty:
            field = self.route_handler.parsed_data_field
            self._json = decode_body(await self.body(), field.annotation if field else Any)
        return self._json
