"""sync_op: the number a renumbered operation was made with (made_seq)

A store signing in for the first time under a device id used before numbers its pending
operations above the server's, and says which number each was made with; another copy of the
store numbers them differently, and the server finds an operation's twin by that number
(docs/protocol.md §3). NULL for every operation not numbered again, so the partial index holds
only those. Existing rows get NULL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 05:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('sync_op', sa.Column('made_seq', sa.BigInteger(), nullable=True))
    op.create_index(
        'ix_sync_op_device_made_seq',
        'sync_op',
        ['device_id', 'made_seq'],
        unique=False,
        sqlite_where=sa.text('made_seq IS NOT NULL'),
        postgresql_where=sa.text('made_seq IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_sync_op_device_made_seq', table_name='sync_op')
    with op.batch_alter_table('sync_op') as batch:
        batch.drop_column('made_seq')
