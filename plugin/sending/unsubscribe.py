"""One-click unsubscribe for bulk email (RFC 8058, RFC 2369).

Each bulk row gets its own URL, ``<base>/unsubscribe/<token>``: the token is the
row's Message-ID and recipient, signed (HMAC, itsdangerous) with a key derived from
IE_SECRET_KEYS, so it cannot be made up, changed to another address, or moved to a
message we never sent. A valid token POSTed (the mail provider's one-click POST, or
the landing page's button) puts the recipient on the suppression list; a GET only
shows the page, because link scanners open every URL in a message (RFC 8058 §3.2).
Posting the same token again changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.crypto import SecretBox
from plugin.mail import build as compose
from plugin.models.outbound import OutboundMessage
from plugin.sending import suppression

_SALT = "unsubscribe"
#: the line added under a bulk message's text, above nothing else
FOOTER = "\n\n--\nNo more bulk email from us: {url}\n"


def _serializer(secrets: SecretBox) -> URLSafeSerializer:
    return URLSafeSerializer(secrets.signing_keys(_SALT), salt=_SALT)


def token_for(secrets: SecretBox, message_id: str, address: str) -> str:
    """The signed token of one bulk recipient."""
    return _serializer(secrets).dumps({"m": message_id, "a": address.lower()})


def link_for(base: str, secrets: SecretBox, message_id: str, address: str) -> str:
    """The recipient's one-click URL (``base`` ends with the route's ``/unsubscribe/``)."""
    return compose.check_unsubscribe_url(base + token_for(secrets, message_id, address))


@dataclass
class Request:
    """What a token asks for: the address, and the message its link came in."""

    address: str
    row: OutboundMessage


def read(session: Session, secrets: SecretBox, token: str) -> Request | None:
    """The request of a valid token for a message we sent to that address; else None."""
    try:
        data = _serializer(secrets).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("m"), str) or \
            not isinstance(data.get("a"), str):
        return None
    row = session.scalar(select(OutboundMessage).where(
        OutboundMessage.message_id_header == data["m"],
        OutboundMessage.bulk_job_id.is_not(None)))
    if row is None or data["a"] not in {a.lower() for _n, a in
                                        compose.addresses_from_json(row.to_addrs)}:
        return None
    return Request(data["a"], row)


def confirm(session: Session, request: Request) -> bool:
    """Put the address on the suppression list; False when it was on it already."""
    return suppression.suppress(session, request.address, "unsubscribed",
                                "unsubscribed with the link in a bulk email",
                                outbound_id=request.row.id)
