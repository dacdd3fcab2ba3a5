"""activities

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:59:52.773497
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('held_on', sa.String(length=10), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('youth_count', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=5000), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_activity_cadre_id_cadre')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_activity_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_cadre_held', ['cadre_id', 'held_on'], unique=False)
        batch_op.create_index('ix_activity_org_held', ['organisation_id', 'held_on'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_org_held')
        batch_op.drop_index('ix_activity_cadre_held')

    op.drop_table('activity')

