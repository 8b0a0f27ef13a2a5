"""inbox items: one open item per sender, unread pages, messages linked to their item

Revision ID: 0002
Revises: 0001

``staff_tasks`` gets ``open_key`` (unique among open tasks: a partial unique index),
``category``, ``urgent_review``, ``page_due_at`` and ``message_count``;
``inbound_messages`` gets ``task_id``, the item a message was filed on, and a partial index on
``received_at`` among rows not yet processed (the sweep for stranded messages).

SQLite adds a foreign key by rebuilding ``inbound_messages`` (Alembic's batch mode); see
``_keep_references`` for what that takes with foreign keys on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reminders.db.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OPEN = 'acknowledged_at IS NULL'
UNPROCESSED = 'processed_at IS NULL'


def upgrade() -> None:
    with op.batch_alter_table('staff_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_key', sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column('category', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('urgent_review', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('page_due_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('message_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_staff_tasks_page_due_at', ['page_due_at'], unique=False)
    op.create_index(
        'uq_staff_tasks_open_key', 'staff_tasks', ['open_key'], unique=True,
        sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
    )

    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _keep_references()
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_inbound_messages_task_id_staff_tasks'), 'staff_tasks',
            ['task_id'], ['id'], ondelete='SET NULL',
        )
        batch_op.create_index(batch_op.f('ix_inbound_messages_task_id'), ['task_id'], unique=False)
    if sqlite:
        _restore_references()

    op.create_index(
        'ix_inbound_unprocessed', 'inbound_messages', ['received_at'],
        sqlite_where=sa.text(UNPROCESSED), postgresql_where=sa.text(UNPROCESSED),
    )

    # Existing items: the message each was opened for is filed on it.
    op.execute(
        'UPDATE inbound_messages SET task_id = (SELECT min(t.id) FROM staff_tasks t '
        'WHERE t.inbound_id = inbound_messages.id) '
        'WHERE id IN (SELECT inbound_id FROM staff_tasks WHERE inbound_id IS NOT NULL)'
    )
    op.execute('UPDATE staff_tasks SET message_count = 1 WHERE inbound_id IS NOT NULL')


def downgrade() -> None:
    op.drop_index('ix_inbound_unprocessed', table_name='inbound_messages')
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _keep_references()
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_task_id'))
        batch_op.drop_constraint(batch_op.f('fk_inbound_messages_task_id_staff_tasks'), type_='foreignkey')
        batch_op.drop_column('task_id')
    if sqlite:
        _restore_references()

    op.drop_index('uq_staff_tasks_open_key', table_name='staff_tasks')
    with op.batch_alter_table('staff_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_tasks_page_due_at')
        batch_op.drop_column('message_count')
        batch_op.drop_column('page_due_at')
        batch_op.drop_column('urgent_review')
        batch_op.drop_column('category')
        batch_op.drop_column('open_key')


# SQLite rebuilds inbound_messages to change its foreign keys (copy, drop, rename); with foreign
# keys on, dropping it sets every inbound_id that points at it to NULL. Keep them, put them back.
_REFERENCES = (('staff_tasks', '_keep_task_inbound'), ('checkin_scores', '_keep_score_inbound'))


def _keep_references() -> None:
    for table, saved in _REFERENCES:
        op.execute(
            f'CREATE TEMP TABLE {saved} AS SELECT id, inbound_id FROM {table} '
            'WHERE inbound_id IS NOT NULL'
        )


def _restore_references() -> None:
    for table, saved in _REFERENCES:
        op.execute(
            f'UPDATE {table} SET inbound_id = (SELECT k.inbound_id FROM {saved} k '
            f'WHERE k.id = {table}.id) WHERE id IN (SELECT id FROM {saved})'
        )
        op.execute(f'DROP TABLE {saved}')
