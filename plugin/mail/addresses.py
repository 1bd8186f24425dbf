"""Email address checks without any network lookup."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalize_address(address: str) -> str | None:
    """The address in normal form, or None when it is not a valid address.

    ``test_environment`` admits the reserved ``.test`` domain (the demo and the
    lab use it); other special-use names such as ``.local`` stay refused.
    """
    try:
        return validate_email(address or "", check_deliverability=False,
                              test_environment=True).normalized
    except EmailNotValidError:
        return None
