"""initial schema

Revision ID: 0001
Revises: 
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reminders.db.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('locations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=400), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('updated_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations'))
    )
    op.create_table('opt_outs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('created_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opt_outs')),
    sa.UniqueConstraint('channel', 'address', name=op.f('uq_opt_outs_channel'))
    )
    op.create_table('patients',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('phone_problem', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('email_problem', sa.String(length=200), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('sms_consent', sa.Boolean(), nullable=False),
    sa.Column('email_consent', sa.Boolean(), nullable=False),
    sa.Column('initial_series_size', sa.Integer(), nullable=False),
    sa.Column('maintenance_interval_days', sa.Integer(), nullable=False),
    sa.Column('needs_plan', sa.Boolean(), nullable=False),
    sa.Column('change_seq', sa.Integer(), nullable=False),
    sa.Column('updated_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_needs_plan'), ['needs_plan'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_phone'), ['phone'], unique=False)

    op.create_table('provider_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_events')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_events_provider'))
    )
    op.create_table('provider_slots',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('next_slot', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider', name=op.f('pk_provider_slots'))
    )
    op.create_table('revoked_tokens',
    sa.Column('token_id', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_id', name=op.f('pk_revoked_tokens'))
    )
    op.create_table('staff_users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=500), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    op.create_table('template_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('created_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_versions')),
    sa.UniqueConstraint('name', 'channel', 'language', 'version', name=op.f('uq_template_versions_name'))
    )
    op.create_table('worker_state',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_worker_state'))
    )
    op.create_table('sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('location_id', sa.String(length=64), nullable=True),
    sa.Column('starts_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=True),
    sa.Column('series_number', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_sessions_location_id_locations')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_sessions_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_starts_at'), ['starts_at'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('session_starts_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('due_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('not_after', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('created_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_messages_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_messages_session_id_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_messages_dedupe_key'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_messages_session', ['session_id', 'channel'], unique=False)

    op.create_table('inbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('from_address', sa.String(length=320), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('received_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('match_note', sa.String(length=500), nullable=True),
    sa.Column('classification', sa.String(length=32), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('checkin_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('processed_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['checkin_message_id'], ['messages.id'], name=op.f('fk_inbound_messages_checkin_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_inbound_messages_patient_id_patients'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('provider_message_id', name=op.f('uq_inbound_messages_provider_message_id'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_from_address'), ['from_address'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_patient_id'), ['patient_id'], unique=False)

    op.create_table('checkin_scores',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('inbound_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('recorded_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_messages.id'], name=op.f('fk_checkin_scores_inbound_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_checkin_scores_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_checkin_scores_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_checkin_scores_session_id_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_scores'))
    )
    with op.batch_alter_table('checkin_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_scores_patient_id'), ['patient_id'], unique=False)

    op.create_table('staff_tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('inbound_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=True),
    sa.Column('created_at', reminders.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_alert_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('alert_count', sa.Integer(), nullable=False),
    sa.Column('acknowledged_at', reminders.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=320), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_messages.id'], name=op.f('fk_staff_tasks_inbound_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_staff_tasks_patient_id_patients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_staff_tasks_session_id_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_tasks')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_staff_tasks_dedupe_key'))
    )
    with op.batch_alter_table('staff_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_staff_tasks_open', ['acknowledged_at', 'urgent'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_tasks_patient_id'), ['patient_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('staff_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_tasks_patient_id'))
        batch_op.drop_index('ix_staff_tasks_open')

    op.drop_table('staff_tasks')
    with op.batch_alter_table('checkin_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkin_scores_patient_id'))

    op.drop_table('checkin_scores')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_patient_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_from_address'))

    op.drop_table('inbound_messages')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_session')
        batch_op.drop_index(batch_op.f('ix_messages_patient_id'))
        batch_op.drop_index('ix_messages_due')

    op.drop_table('messages')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_starts_at'))
        batch_op.drop_index(batch_op.f('ix_sessions_patient_id'))

    op.drop_table('sessions')
    op.drop_table('worker_state')
    op.drop_table('template_versions')
    op.drop_table('staff_users')
    op.drop_table('revoked_tokens')
    op.drop_table('provider_slots')
    op.drop_table('provider_events')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_phone'))
        batch_op.drop_index(batch_op.f('ix_patients_needs_plan'))
        batch_op.drop_index(batch_op.f('ix_patients_email'))

    op.drop_table('patients')
    op.drop_table('opt_outs')
    op.drop_table('locations')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
