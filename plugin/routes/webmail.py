"""The webmail: folders, message list, message view, actions."""

RULES: list = []
