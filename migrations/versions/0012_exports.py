"""campaign workbooks built in the background

The table of workflows/campaign_exports.py (campaign_export): who asked for which campaign's
workbook at which organisation, where the job stands, and the random name of its file.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expected_rows', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_export_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_campaign_export_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_export')),
    sa.UniqueConstraint('token', name=op.f('uq_campaign_export_token'))
    )
    with op.batch_alter_table('campaign_export', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_export_requested_at', ['requested_at'], unique=False)
        batch_op.create_index('ix_campaign_export_requested_by', ['requested_by', 'campaign_id', 'organisation_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campaign_export', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_export_requested_by')
        batch_op.drop_index('ix_campaign_export_requested_at')
    op.drop_table('campaign_export')
