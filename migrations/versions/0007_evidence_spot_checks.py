"""evidence files and monthly spot checks

Tables of workflows/evidence.py (evidence_file), workflows/spot_checks.py (spot_check_round,
spot_check), workflows/satisfaction.py (satisfaction_rating) and workflows/eligibility.py
(assessment_result).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_evidence_file_activity_id_activity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_file')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_evidence_file_stored_name'))
    )
    with op.batch_alter_table('evidence_file', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_file_activity', ['activity_id'], unique=False)
        batch_op.create_index('ix_evidence_file_instance', ['instance_id'], unique=False)

    op.create_table('spot_check_round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('population', sa.Integer(), nullable=False),
    sa.Column('sample_size', sa.Integer(), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_spot_check_round_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spot_check_round')),
    sa.UniqueConstraint('month', 'organisation_id', name=op.f('uq_spot_check_round_month_organisation_id'))
    )

    op.create_table('spot_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('inspector', sa.String(length=64), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=True),
    sa.Column('verdict', sa.String(length=16), nullable=True),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_spot_check_activity_id_activity')),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_spot_check_cadre_id_cadre')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_spot_check_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['round_id'], ['spot_check_round.id'],
                            name=op.f('fk_spot_check_round_id_spot_check_round')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spot_check')),
    sa.UniqueConstraint('activity_id', name=op.f('uq_spot_check_activity_id'))
    )
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.create_index('ix_spot_check_month_org', ['month', 'organisation_id'], unique=False)
        batch_op.create_index('ix_spot_check_cadre_verdict', ['cadre_id', 'verdict'], unique=False)

    op.create_table('satisfaction_rating',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('youth_id', sa.Integer(), nullable=True),
    sa.Column('cadre_id', sa.Integer(), nullable=True),
    sa.Column('rated_username', sa.String(length=64), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('stars', sa.Integer(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('rated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_satisfaction_rating_cadre_id_cadre')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_satisfaction_rating_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['youth_id'], ['youth.id'], name=op.f('fk_satisfaction_rating_youth_id_youth')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_satisfaction_rating')),
    sa.UniqueConstraint('source', 'source_id', name=op.f('uq_satisfaction_rating_source_source_id'))
    )
    with op.batch_alter_table('satisfaction_rating', schema=None) as batch_op:
        batch_op.create_index('ix_satisfaction_rating_rated_at', ['rated_at'], unique=False)
        batch_op.create_index('ix_satisfaction_rating_cadre', ['cadre_id', 'rated_at'], unique=False)

    op.create_table('assessment_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_assessment_result_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment_result')),
    sa.UniqueConstraint('cadre_id', 'year', name=op.f('uq_assessment_result_cadre_id_year'))
    )


def downgrade() -> None:
    op.drop_table('assessment_result')
    with op.batch_alter_table('satisfaction_rating', schema=None) as batch_op:
        batch_op.drop_index('ix_satisfaction_rating_cadre')
        batch_op.drop_index('ix_satisfaction_rating_rated_at')
    op.drop_table('satisfaction_rating')
    with op.batch_alter_table('spot_check', schema=None) as batch_op:
        batch_op.drop_index('ix_spot_check_cadre_verdict')
        batch_op.drop_index('ix_spot_check_month_org')
    op.drop_table('spot_check')
    op.drop_table('spot_check_round')
    with op.batch_alter_table('evidence_file', schema=None) as batch_op:
        batch_op.drop_index('ix_evidence_file_instance')
        batch_op.drop_index('ix_evidence_file_activity')
    op.drop_table('evidence_file')
