"""materialised rankings and bulletins: ranking_run, cadre_ranking, organisation_ranking, bulletin_issue

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PATH = sa.String(length=512).with_variant(sa.String(length=512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table('ranking_run',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cadres', sa.Integer(), nullable=False),
    sa.Column('organisations', sa.Integer(), nullable=False),
    sa.Column('milliseconds', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_ranking_run'))
    )
    op.create_table('cadre_ranking',
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('org_path', PATH, nullable=False),
    sa.Column('root_id', sa.Integer(), nullable=False),
    sa.Column('depth1_id', sa.Integer(), nullable=True),
    sa.Column('depth2_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.Numeric(precision=7, scale=2), nullable=False),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('bound', sa.Integer(), nullable=False),
    sa.Column('period_activities', sa.Integer(), nullable=False),
    sa.Column('periods_met', sa.Integer(), nullable=False),
    sa.Column('periods_due', sa.Integer(), nullable=False),
    sa.Column('rank_in_root', sa.Integer(), nullable=False),
    sa.Column('rank_in_depth1', sa.Integer(), nullable=True),
    sa.Column('rank_in_depth2', sa.Integer(), nullable=True),
    sa.Column('rank_in_organisation', sa.Integer(), nullable=False),
    sa.Column('position_in_root', sa.Integer(), nullable=False),
    sa.Column('position_in_depth1', sa.Integer(), nullable=True),
    sa.Column('position_in_depth2', sa.Integer(), nullable=True),
    sa.Column('position_in_organisation', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('cadre_id', 'day', name=op.f('pk_cadre_ranking'))
    )
    with op.batch_alter_table('cadre_ranking', schema=None) as batch_op:
        batch_op.create_index('ix_cadre_ranking_root', ['day', 'root_id', 'position_in_root'], unique=False)
        batch_op.create_index('ix_cadre_ranking_depth1', ['day', 'depth1_id', 'position_in_depth1'], unique=False)
        batch_op.create_index('ix_cadre_ranking_depth2', ['day', 'depth2_id', 'position_in_depth2'], unique=False)
        batch_op.create_index('ix_cadre_ranking_org', ['day', 'organisation_id', 'position_in_organisation'],
                              unique=False)

    op.create_table('organisation_ranking',
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('root_id', sa.Integer(), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('path', PATH, nullable=False),
    sa.Column('cadres', sa.Integer(), nullable=False),
    sa.Column('own_cadres', sa.Integer(), nullable=False),
    sa.Column('points_total', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('average_points', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('periods_met', sa.Integer(), nullable=False),
    sa.Column('periods_due', sa.Integer(), nullable=False),
    sa.Column('compliance_rate', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('campaign_done', sa.Integer(), nullable=False),
    sa.Column('campaign_total', sa.Integer(), nullable=False),
    sa.Column('campaign_rate', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('bound', sa.Integer(), nullable=False),
    sa.Column('binding_rate', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('score', sa.Numeric(precision=7, scale=2), nullable=False),
    sa.Column('points_histogram', sa.JSON(), nullable=False),
    sa.Column('rank_among_siblings', sa.Integer(), nullable=True),
    sa.Column('rank_at_depth', sa.Integer(), nullable=True),
    sa.Column('rank_points', sa.Integer(), nullable=True),
    sa.Column('rank_compliance', sa.Integer(), nullable=True),
    sa.Column('rank_campaigns', sa.Integer(), nullable=True),
    sa.Column('rank_binding', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('organisation_id', 'day', name=op.f('pk_organisation_ranking'))
    )
    with op.batch_alter_table('organisation_ranking', schema=None) as batch_op:
        batch_op.create_index('ix_organisation_ranking_siblings', ['day', 'parent_id', 'rank_among_siblings'],
                              unique=False)
        batch_op.create_index('ix_organisation_ranking_depth', ['day', 'root_id', 'depth', 'rank_at_depth'],
                              unique=False)
    op.create_table('bulletin_issue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('snapshot_day', sa.Date(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cadres', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_bulletin_issue_organisation_id_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulletin_issue')),
    sa.UniqueConstraint('organisation_id', 'kind', 'period', name=op.f('uq_bulletin_issue_organisation_id_kind_period'))
    )


def downgrade() -> None:
    op.drop_table('bulletin_issue')
    with op.batch_alter_table('organisation_ranking', schema=None) as batch_op:
        batch_op.drop_index('ix_organisation_ranking_depth')
        batch_op.drop_index('ix_organisation_ranking_siblings')
    op.drop_table('organisation_ranking')
    with op.batch_alter_table('cadre_ranking', schema=None) as batch_op:
        batch_op.drop_index('ix_cadre_ranking_org')
        batch_op.drop_index('ix_cadre_ranking_depth2')
        batch_op.drop_index('ix_cadre_ranking_depth1')
        batch_op.drop_index('ix_cadre_ranking_root')
    op.drop_table('cadre_ranking')
    op.drop_table('ranking_run')
