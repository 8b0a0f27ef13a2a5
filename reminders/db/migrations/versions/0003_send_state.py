"""send state: when and to whom the latest provider call went, in-doubt re-sends, a CHECK on status

Revision ID: 0003
Revises: 0002

``messages`` gets ``sending_at`` and ``sent_to`` (what reconciling an in-doubt send asks the
provider about), ``resends`` (how many times an in-doubt send was sent again) and the CHECK
constraint ``ck_messages_status`` (the statuses of reminders.outbox.status).

SQLite adds a CHECK constraint by rebuilding ``messages`` (Alembic's batch mode); with foreign
keys on, dropping the old table would set every reference to it to NULL, so they are kept and
put back, as in 0002.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reminders.db.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

STATUSES = "status IN ('planned', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'skipped')"
# Tables whose rows point at messages (ON DELETE SET NULL).
_REFERENCES = (
    ('inbound_messages', 'checkin_message_id', '_keep_inbound_checkin'),
    ('checkin_scores', 'message_id', '_keep_score_message'),
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _keep_references()
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sending_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sent_to', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('resends', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_check_constraint('status', sa.text(STATUSES))
    if sqlite:
        _restore_references()


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _keep_references()
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_messages_status'), type_='check')
        batch_op.drop_column('resends')
        batch_op.drop_column('sent_to')
        batch_op.drop_column('sending_at')
    if sqlite:
        _restore_references()


def _keep_references() -> None:
    for table, column, saved in _REFERENCES:
        op.execute(
            f'CREATE TEMP TABLE {saved} AS SELECT id, {column} AS ref FROM {table} '
            f'WHERE {column} IS NOT NULL'
        )


def _restore_references() -> None:
    for table, column, saved in _REFERENCES:
        op.execute(
            f'UPDATE {table} SET {column} = (SELECT k.ref FROM {saved} k '
            f'WHERE k.id = {table}.id) WHERE id IN (SELECT id FROM {saved})'
        )
        op.execute(f'DROP TABLE {saved}')
