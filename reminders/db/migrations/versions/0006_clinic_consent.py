"""what the clinic's records last said about consent, so a change made in the console stands

Revision ID: 0006
Revises: 0005

``patients.clinic_sms_consent`` and ``clinic_email_consent`` hold the clinic's values at the
last import or sync. The importer writes the clinic's consent over the patient's only when the
clinic's own value changed since then: a consent staff recorded in the console (the patient
said so on the phone) is not undone by the next sync of an unchanged record. Existing rows take
their current values as the clinic's.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clinic_sms_consent', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('clinic_email_consent', sa.Boolean(), nullable=True))
    op.execute(
        "UPDATE patients SET clinic_sms_consent = sms_consent, clinic_email_consent = email_consent"
    )


def downgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column('clinic_email_consent')
        batch_op.drop_column('clinic_sms_consent')
