"""Fetch now and the admin's mailbox health page."""

RULES: list = []
