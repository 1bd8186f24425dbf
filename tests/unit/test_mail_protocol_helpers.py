"""Pure helpers of the protocol layer: folder names, UID sets, FETCH parsing, line endings."""

from __future__ import annotations

import datetime as dt

import pytest

from plugin.mail.imap_responses import (
    group_fetch_items,
    parse_internaldate,
    parse_list_item,
    parse_uid_set,
    uid_set,
)
from plugin.mail.smtp import normalise_line_endings
from plugin.mail.utf7 import decode_folder, encode_folder, quote, quote_folder


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("R&D", "R&-D"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Bewerbungen 😀", "Bewerbungen &2D3eAA-"),
    ],
)
def test_folder_names_round_trip_through_modified_utf7(name, wire):
    assert encode_folder(name) == wire
    assert decode_folder(wire) == name


def test_quote_escapes_and_refuses_line_breaks():
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert quote_folder("Entwürfe") == '"Entw&APw-rfe"'
    with pytest.raises(ValueError):
        quote("INBOX\r\nA1 DELETE INBOX")


def test_uid_sets_are_compact_and_expand_back():
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert parse_uid_set("1:3,7,10:9") == [1, 2, 3, 7, 9, 10]


def test_internaldate_is_parsed_without_locale():
    assert parse_internaldate(b" 7-Jul-1996 02:44:25 -0700") == dt.datetime(
        1996, 7, 7, 2, 44, 25, tzinfo=dt.timezone(dt.timedelta(hours=-7))
    )
    assert parse_internaldate(b"garbage") is None


def test_fetch_items_are_grouped_per_message_including_trailing_flags():
    items = [
        (b'1 (UID 5 INTERNALDATE "01-Jan-2024 10:00:00 +0000" BODY[] {3}', b"abc"),
        b" FLAGS (\\Seen))",
        b"2 (FLAGS (\\Flagged) UID 6)",  # unsolicited flag update, no body
        (b"3 (UID 7 FLAGS () BODY[] {2}", b"xy"),
        b")",
    ]
    grouped = list(group_fetch_items(items))
    assert [body for _meta, body in grouped] == [b"abc", None, b"xy"]
    assert b"\\Seen" in grouped[0][0]


def test_list_lines_with_quoted_and_literal_names():
    folder = parse_list_item(b'(\\HasNoChildren \\Sent) "/" "Sent Items"')
    assert folder.name == "Sent Items" and "\\SENT" in folder.attributes
    folder = parse_list_item((b'(\\HasNoChildren) "." {8}', b'a "b" &-'))
    assert folder.name == 'a "b" &' and folder.delimiter == "."
    assert parse_list_item(b'(\\Noselect) NIL ""').delimiter is None


def test_bare_line_endings_become_crlf():
    assert normalise_line_endings(b"a\nb\r\nc\rd\n.\n") == b"a\r\nb\r\nc\r\nd\r\n.\r\n"


def test_protocol_layer_imports_nothing_from_the_web_or_database_side():
    import ast
    import pathlib

    import plugin.mail.errors as anchor

    forbidden = ("flask", "sqlalchemy", "werkzeug", "alembic", "plugin.")
    for path in pathlib.Path(anchor.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                # plugin.words: the translation marker, a leaf importing nothing
                inside = name.startswith("plugin.mail") or name == "plugin.words"
                assert inside or not name.lower().startswith(forbidden), (path.name, name)


def test_folder_roles_fall_back_to_common_names_without_special_use():
    from plugin.mail.imap_responses import Folder, folder_roles

    def folder(name: str, *attrs: str) -> Folder:
        return Folder(name, "/", frozenset(attrs))

    roles = folder_roles(
        [
            folder("INBOX"),
            folder("Sent Items"),
            folder("Deleted Items"),
            folder("[Gmail]", "\\NOSELECT"),
        ]
    )
    assert roles == {"inbox": "INBOX", "sent": "Sent Items", "trash": "Deleted Items"}
    roles = folder_roles([folder("inbox"), folder("Sent"), folder("Gesendet", "\\SENT")])
    assert roles["sent"] == "Gesendet" and roles["inbox"] == "inbox"

