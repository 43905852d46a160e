"""web page sessions keep no Keystone token (issue 22): drop ui_session.token

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-06 05:40:00

A copy of the database must let nobody act on an OpenStack API: the user's token now
lives only encrypted in the browser's cookie, with a key the database does not hold.
The sessions of before the upgrade held raw tokens: they are deleted (their users sign
in again) before the column goes.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM ui_session")
    with op.batch_alter_table("ui_session") as batch:
        batch.drop_column("token")


def downgrade():
    # Sessions of this version have no token to restore: they end.
    op.execute("DELETE FROM ui_session")
    with op.batch_alter_table("ui_session") as batch:
        batch.add_column(sa.Column("token", sa.Text(), nullable=False, server_default=""))
