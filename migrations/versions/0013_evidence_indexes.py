"""drop the notification index no query uses

``ix_notification_unsent`` (channel, sent_at) dates from the first outbox (0002).  Since delivery
(0010) the sender reads ``ix_notification_delivery`` (channel, delivery_state, next_attempt_at),
the notification centre ``ix_notification_recipient``, and the backlog gauge filters on
delivery_state and sent_at without a channel: nothing filters on (channel, sent_at), and every
row written paid for the index.

``activity.instance_id`` gets no index: no query filters on it (evidence and spot checks reach an
activity through ``evidence_file.activity_id`` and the start event's ``activity_id``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 10:00:00
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_unsent')


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_unsent', ['channel', 'sent_at'], unique=False)
