"""Notification delivery: staff e-mail addresses, and the outbox's delivery bookkeeping

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=255), nullable=True))
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.create_index('ix_notification_delivery', ['channel', 'delivery_state', 'next_attempt_at'],
                              unique=False)
    # Notifications written before delivery existed are not sent now (they may be months old).
    op.execute("UPDATE notification SET delivery_state = 'skipped', "
               "last_error = 'written before delivery existed'")


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_delivery')
        batch_op.drop_column('last_error')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('delivery_state')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('email')
