"""organisations people roles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 11:51:08.839655
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_key_at', ['key', 'at'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body', sa.String(length=4000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_recipient', ['recipient', 'read_at'], unique=False)
        batch_op.create_index('ix_notification_unsent', ['channel', 'sent_at'], unique=False)

    op.create_table('one_time_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_one_time_code'))
    )
    with op.batch_alter_table('one_time_code', schema=None) as batch_op:
        batch_op.create_index('ix_one_time_code_phone', ['phone', 'created_at'], unique=False)

    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=512).with_variant(sa.String(length=512, collation='C'), 'postgresql'), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['organisation.id'], name=op.f('fk_organisation_parent_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation')),
    sa.UniqueConstraint('code', name=op.f('uq_organisation_code'))
    )
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index('ix_organisation_path', ['path'], unique=False)

    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_user_account_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('username', name=op.f('uq_user_account_username'))
    )
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_account_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('cadre',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('guided_committee_id', sa.Integer(), nullable=True),
    sa.Column('guided_branch_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['guided_branch_id'], ['organisation.id'], name=op.f('fk_cadre_guided_branch_id_organisation')),
    sa.ForeignKeyConstraint(['guided_committee_id'], ['organisation.id'], name=op.f('fk_cadre_guided_committee_id_organisation')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_cadre_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_cadre_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cadre')),
    sa.UniqueConstraint('code', name=op.f('uq_cadre_code')),
    sa.UniqueConstraint('user_id', name=op.f('uq_cadre_user_id'))
    )
    with op.batch_alter_table('cadre', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cadre_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('role_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_role_grant_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_role_grant_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grant')),
    sa.UniqueConstraint('user_id', 'role', 'organisation_id', name=op.f('uq_role_grant_user_id_role_organisation_id'))
    )
    with op.batch_alter_table('role_grant', schema=None) as batch_op:
        batch_op.create_index('ix_role_grant_role_org', ['role', 'organisation_id'], unique=False)

    op.create_table('youth',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('occupation', sa.String(length=64), nullable=True),
    sa.Column('industry', sa.String(length=64), nullable=True),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_youth_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_youth')),
    sa.UniqueConstraint('phone', name=op.f('uq_youth_phone')),
    sa.UniqueConstraint('user_id', name=op.f('uq_youth_user_id'))
    )
    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('youth_id', sa.Integer(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_contact_cadre_id_cadre')),
    sa.ForeignKeyConstraint(['youth_id'], ['youth.id'], name=op.f('fk_contact_youth_id_youth')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact')),
    sa.UniqueConstraint('cadre_id', 'youth_id', name=op.f('uq_contact_cadre_id_youth_id'))
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index('ix_contact_youth', ['youth_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_youth')

    op.drop_table('contact')
    op.drop_table('youth')
    with op.batch_alter_table('role_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_role_grant_role_org')

    op.drop_table('role_grant')
    with op.batch_alter_table('cadre', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cadre_organisation_id'))

    op.drop_table('cadre')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_account_organisation_id'))

    op.drop_table('user_account')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index('ix_organisation_path')
        batch_op.drop_index(batch_op.f('ix_organisation_parent_id'))

    op.drop_table('organisation')
    with op.batch_alter_table('one_time_code', schema=None) as batch_op:
        batch_op.drop_index('ix_one_time_code_phone')

    op.drop_table('one_time_code')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_unsent')
        batch_op.drop_index('ix_notification_recipient')

    op.drop_table('notification')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_key_at')

    op.drop_table('login_attempt')

