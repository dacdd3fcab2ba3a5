"""process instances by who started them: a youth's own wishes and questions, newest first

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 14:50:00
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_process_instance_started_by', 'process_instance', ['started_by', 'process_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_process_instance_started_by', table_name='process_instance')
