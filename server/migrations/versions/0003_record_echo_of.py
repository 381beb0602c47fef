"""record: which device's own create a record still is (echo_of)

A record whose current state is exactly one device's create, unchanged since, names that
device in ``echo_of``; any later write clears it. A pull may leave such records out for that
device, which holds them already (protocol 3, docs/protocol.md §7.1). Existing rows get NULL:
they are sent as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('record', sa.Column('echo_of', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('record') as batch:
        batch.drop_column('echo_of')
