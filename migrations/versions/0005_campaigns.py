"""campaigns: a campaign, its targets (one instance each) and its launch chunks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.String(length=255), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('launched_by', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_targets', sa.Integer(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('launch_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['definition_id'], ['process_definition.id'], name=op.f('fk_campaign_definition_id_process_definition')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_campaign_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['parent_id'], ['campaign.id'], name=op.f('fk_campaign_parent_id_campaign')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign'))
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_launched_at', ['launched_at'], unique=False)
        batch_op.create_index('ix_campaign_organisation_created', ['organisation_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index('ix_campaign_status_window_start', ['status', 'window_start'], unique=False)

    op.create_table('campaign_chunk',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('launched', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_chunk_campaign_id_campaign')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_chunk')),
    sa.UniqueConstraint('campaign_id', 'number', name=op.f('uq_campaign_chunk_campaign_id_number'))
    )
    op.create_table('campaign_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('target_key', sa.String(length=64), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=True),
    sa.Column('chunk', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_campaign_target_instance_id_process_instance')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_target')),
    sa.UniqueConstraint('campaign_id', 'target_key', name=op.f('uq_campaign_target_campaign_id_target_key')),
    sa.UniqueConstraint('instance_id', name=op.f('uq_campaign_target_instance_id'))
    )
    with op.batch_alter_table('campaign_target', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_target_chunk', ['campaign_id', 'chunk'], unique=False)
        batch_op.create_index('ix_campaign_target_organisation', ['campaign_id', 'organisation_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campaign_target', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_target_organisation')
        batch_op.drop_index('ix_campaign_target_chunk')

    op.drop_table('campaign_target')
    op.drop_table('campaign_chunk')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_status_window_start')
        batch_op.drop_index(batch_op.f('ix_campaign_parent_id'))
        batch_op.drop_index('ix_campaign_organisation_created')
        batch_op.drop_index('ix_campaign_launched_at')

    op.drop_table('campaign')
