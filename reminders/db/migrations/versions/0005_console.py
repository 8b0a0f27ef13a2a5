"""the console around the front desk: staff notes, policy versions, inbox read state, how a
session was confirmed, each staff member's console language

Revision ID: 0005
Revises: 0004

``staff_notes`` are notes staff write in a patient's conversation. ``policy_versions`` keeps
every policy saved from the console (history, diff, revert). ``task_reads`` records who has
seen an inbox item (unread state is per person). ``sessions.confirmed_via`` says how a session
was confirmed (sms, email, phone, clinic); ``staff_users.language`` is the console's language
for that person (en, es).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reminders.db.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UTC_DT = reminders.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('staff_notes',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=320), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UTC_DT, nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_staff_notes_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_notes'))
    )
    with op.batch_alter_table('staff_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_notes_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_notes_created_at'), ['created_at'], unique=False)

    op.create_table('policy_versions',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', UTC_DT, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_versions')),
    sa.UniqueConstraint('version', name=op.f('uq_policy_versions_version'))
    )

    op.create_table('task_reads',
    sa.Column('task_id', BIG_ID, nullable=False),
    sa.Column('user_id', BIG_ID, nullable=False),
    sa.Column('read_at', UTC_DT, nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['staff_tasks.id'], name=op.f('fk_task_reads_task_id_staff_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_task_reads_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'user_id', name=op.f('pk_task_reads'))
    )

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_via', sa.String(length=16), nullable=True))
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('confirmed_via')
    op.drop_table('task_reads')
    op.drop_table('policy_versions')
    with op.batch_alter_table('staff_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_notes_created_at'))
        batch_op.drop_index(batch_op.f('ix_staff_notes_patient_id'))
    op.drop_table('staff_notes')
