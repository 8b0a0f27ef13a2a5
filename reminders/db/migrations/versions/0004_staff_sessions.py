"""staff sessions and login throttling: server-side console sessions, failed-login counters

Revision ID: 0004
Revises: 0003

``staff_sessions`` holds one row per signed-in console session (the signed cookie names it by
a random token; the row is keyed by the token's SHA-256): sign-out, a password change or reset
and disabling the account revoke it, and an idle one stops counting.
``staff_login_throttle`` counts recent failed password checks per client address, per account
and per account from one address (hashed keys), for the back-off that replaces the account
lock (``staff_users.failed_logins`` and ``locked_until`` are no longer used).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reminders.db.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_sessions_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_sessions_created_at'), ['created_at'], unique=False)

    op.create_table('staff_login_throttle',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_staff_login_throttle'))
    )
    with op.batch_alter_table('staff_login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_login_throttle_last_failure_at'), ['last_failure_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staff_login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_login_throttle_last_failure_at'))
    op.drop_table('staff_login_throttle')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_created_at'))
        batch_op.drop_index(batch_op.f('ix_staff_sessions_user_id'))
    op.drop_table('staff_sessions')
