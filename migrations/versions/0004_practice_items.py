"""practice items: the education-practice (一学一做) task-list items a cadre did or missed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:07:49.397027
"""
from alembic import op
import sqlalchemy as sa



revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('practice_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('held_on', sa.String(length=10), nullable=True),
    sa.Column('place', sa.String(length=200), nullable=True),
    sa.Column('participants', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=5000), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_practice_item_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_practice_item')),
    sa.UniqueConstraint('instance_id', 'item', name=op.f('uq_practice_item_instance_id_item'))
    )
    with op.batch_alter_table('practice_item', schema=None) as batch_op:
        batch_op.create_index('ix_practice_item_cadre_year', ['cadre_id', 'year'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('practice_item', schema=None) as batch_op:
        batch_op.drop_index('ix_practice_item_cadre_year')

    op.drop_table('practice_item')
