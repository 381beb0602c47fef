"""record: the snapshot is kept as its envelope, its fields being data

A record's fields were stored three times (data, the merge state, the snapshot a pull sends).
The snapshot column becomes ``envelope``: the snapshot without its fields, which a pull splices
back in from ``data`` (server.store.snapshot_text). Rows are converted in both directions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 20:50:00

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_CHUNK = 2000
_record = sa.table(
    'record',
    sa.column('id', sa.String),
    sa.column('data', sa.Text),
    sa.column('snapshot', sa.Text),
    sa.column('envelope', sa.Text),
)


def _dumps(value):
    return json.dumps(value, separators=(',', ':'), ensure_ascii=False)


def _convert(read, write, change):
    """Rewrite every record row, a chunk of ids at a time (keyset on id)."""
    conn = op.get_bind()
    after = ''
    while True:
        rows = conn.execute(
            sa.select(_record.c.id, read, sa.cast(_record.c.data, sa.Text))
            .where(_record.c.id > after)
            .order_by(_record.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        conn.execute(
            _record.update().where(_record.c.id == sa.bindparam('b_id')),
            [{'b_id': rid, write.name: change(text, data)} for rid, text, data in rows],
        )
        after = rows[-1][0]


def _envelope(snapshot, data):
    snap = json.loads(snapshot)
    snap.pop('fields', None)
    return _dumps(snap)


def _snapshot(envelope, data):
    return _dumps({'fields': json.loads(data), **json.loads(envelope)})


def upgrade():
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('envelope', sa.Text(), nullable=True))
    _convert(_record.c.snapshot, _record.c.envelope, _envelope)
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.alter_column('envelope', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('snapshot')


def downgrade():
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('snapshot', sa.Text(), nullable=True))
    _convert(_record.c.envelope, _record.c.snapshot, _snapshot)
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.alter_column('snapshot', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('envelope')
