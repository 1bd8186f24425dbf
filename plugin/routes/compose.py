"""Compose, reply, forward and bulk email."""

RULES: list = []
