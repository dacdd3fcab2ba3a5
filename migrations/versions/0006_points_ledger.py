"""points ledger and five-ones quota settings

The points ledger (point_entry) with its per-category tally (point_tally), each organisation's
quota settings (quota_setting), and the likes, comments and article shares that score
(interaction, article_share).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('point_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('points', sa.Numeric(precision=7, scale=2), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source_kind', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_point_entry_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_entry')),
    sa.UniqueConstraint('cadre_id', 'year', 'category', 'dedup_key',
                        name=op.f('uq_point_entry_cadre_id_year_category_dedup_key'))
    )
    with op.batch_alter_table('point_entry', schema=None) as batch_op:
        batch_op.create_index('ix_point_entry_source', ['source_kind', 'source_id'], unique=False)

    op.create_table('point_tally',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('cents', sa.Integer(), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_point_tally_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('year', 'cadre_id', 'category', name=op.f('pk_point_tally'))
    )
    with op.batch_alter_table('point_tally', schema=None) as batch_op:
        batch_op.create_index('ix_point_tally_cadre', ['cadre_id', 'year'], unique=False)

    op.create_table('quota_setting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('cadre_activities', sa.Integer(), nullable=True),
    sa.Column('part_time_activities', sa.Integer(), nullable=True),
    sa.Column('organ_activities', sa.Integer(), nullable=True),
    sa.Column('contact_target', sa.Integer(), nullable=True),
    sa.Column('part_time_contact_target', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_quota_setting_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_setting')),
    sa.UniqueConstraint('organisation_id', name=op.f('uq_quota_setting_organisation_id'))
    )

    op.create_table('interaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('body', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_interaction_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interaction'))
    )
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.create_index('ix_interaction_cadre_at', ['cadre_id', 'created_at'], unique=False)
        batch_op.create_index('ix_interaction_target', ['target', 'actor', 'kind'], unique=False)

    op.create_table('article_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('article', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('shared_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_article_share_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_article_share')),
    sa.UniqueConstraint('cadre_id', 'article', name=op.f('uq_article_share_cadre_id_article'))
    )


def downgrade() -> None:
    op.drop_table('article_share')
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.drop_index('ix_interaction_target')
        batch_op.drop_index('ix_interaction_cadre_at')
    op.drop_table('interaction')
    op.drop_table('quota_setting')
    with op.batch_alter_table('point_tally', schema=None) as batch_op:
        batch_op.drop_index('ix_point_tally_cadre')
    op.drop_table('point_tally')
    with op.batch_alter_table('point_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_point_entry_source')
    op.drop_table('point_entry')
