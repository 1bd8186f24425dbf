"""ie_host_note: the notes the add-on wrote on host records (to brief or remove them)

Revision ID: 0009
Revises: 0012

Notes written before this revision are recorded from the record links that wrote
them (every one of them carried the subject and text: detail "full"), so
``flask integrated-email redact-notes`` can make the ones sharing does not allow
brief, and removing a mailbox can remove them.
"""

import hashlib
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ie_host_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("record_kind", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("note_key", sa.String(length=700), nullable=False),
        sa.Column("detail", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["ie_mailbox.id"], ondelete="CASCADE",
                                name="fk_ie_host_note_mailbox_id_ie_mailbox"),
        sa.ForeignKeyConstraint(["message_id"], ["ie_message.id"], ondelete="CASCADE",
                                name="fk_ie_host_note_message_id_ie_message"),
        sa.PrimaryKeyConstraint("id", name="pk_ie_host_note"),
        sa.UniqueConstraint("mailbox_id", "note_key", name="uq_ie_host_note_mailbox_id_note_key"),
    )
    op.create_index("ix_ie_host_note_key", "ie_host_note", ["note_key"])
    op.create_index("ix_ie_host_note_message_id", "ie_host_note", ["message_id"])
    _record_earlier_notes()


def _record_earlier_notes() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT m.id, m.mailbox_id, m.message_key, m.message_id_header, m.origin, "
        "l.record_kind, l.record_id FROM ie_record_link l "
        "JOIN ie_message m ON m.id = l.message_id "
        "WHERE (m.origin = 'synced' AND l.how IN ('auto', 'reply')) "
        "OR (m.origin = 'ats' AND l.how = 'sent')")).all()
    now = datetime.now(timezone.utc)
    table = sa.table("ie_host_note", *(sa.column(c) for c in (
        "mailbox_id", "message_id", "record_kind", "record_id", "note_key", "detail",
        "created_at")))
    values = []
    for mid, box, key, header, origin, kind, rid in rows:
        if origin == "ats":  # plugin.sending.sent_copy.note_key
            digest = hashlib.sha256(f"{header}|{kind}:{rid}".encode()).hexdigest()[:40]
            note_key = f"ie-sent:{digest}"
        else:  # plugin.linking.importer's key of 0001-0007
            note_key = f"integrated_email:{key}:{kind}:{rid}"
        values.append({"mailbox_id": box, "message_id": mid, "record_kind": kind,
                       "record_id": rid, "note_key": note_key, "detail": "full",
                       "created_at": now})
    for start in range(0, len(values), 1000):
        op.bulk_insert(table, values[start:start + 1000])


def downgrade() -> None:
    op.drop_index("ix_ie_host_note_message_id", table_name="ie_host_note")
    op.drop_index("ix_ie_host_note_key", table_name="ie_host_note")
    op.drop_table("ie_host_note")
