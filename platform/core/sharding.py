"""What in the live schema stops a tenant-sharded PostgreSQL (Citus, hash-distributed by `tenant_id`).

deploy/README.md ("The database past one server") has the plan; this reads the database's catalogs and lists
what a distribution by tenant would refuse, so that the list can only shrink (tests/test_sharding_plan.py, with
its allow-list `tests/sharding_blockers.txt`). Tables with a `tenant_id` column would be distributed, the others
(users, groups, plans, exchange rates, the tenants themselves, Django's own) replicated to every node as
reference tables. Citus requires of a distributed table that:

* every primary key and unique constraint or index include the distribution column (`tenant_id`);
* a foreign key to another distributed table include the distribution column on both sides
  (`(tenant_id, visit_id) → (tenant_id, id)`); one to a reference table is fine;
* the distribution column is never NULL;

and no reference table may have a foreign key to a distributed table.

    python manage.py sharding_report       # the figures, as JSON
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

TENANT_COLUMN = "tenant_id"

_TABLES = """
SELECT c.oid, c.relname,
       (SELECT NOT a.attnotnull FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname = %s AND NOT a.attisdropped) AS tenant_nullable
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
_UNIQUE_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisprimary,
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n),
       i.indexprs IS NOT NULL
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE i.indisunique
"""
_FOREIGN_KEYS = """
SELECT con.conrelid, con.confrelid,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.n)
  FROM pg_constraint con
 WHERE con.contype = 'f'
"""


@dataclass(frozen=True)
class ShardingPlan:
    """The tables as a distribution by tenant would treat them, and what it would refuse (one line each)."""

    distributed: list[str]
    reference: list[str]
    blockers: list[str]

    def figures(self) -> dict[str, int]:
        kinds = ("primary key", "unique", "foreign key", "reference table's foreign key", "nullable tenant")
        counts = {kind: sum(1 for line in self.blockers if line.startswith(f"{kind}:")) for kind in kinds}
        return {
            "tables distributed by tenant": len(self.distributed),
            "reference tables (replicated)": len(self.reference),
            **{f"blockers: {kind}": count for kind, count in counts.items()},
            "blockers": len(self.blockers),
        }


def _columns(names: list[str]) -> str:
    return ", ".join(names)


def sharding_plan(connection: BaseDatabaseWrapper) -> ShardingPlan:
    """Read the schema of `connection` (PostgreSQL) and list what a distribution by `tenant_id` would refuse."""
    with connection.cursor() as cursor:
        cursor.execute(_TABLES, [TENANT_COLUMN])
        tables = {oid: (name, nullable) for oid, name, nullable in cursor.fetchall()}
        cursor.execute(_UNIQUE_INDEXES)
        unique_indexes = cursor.fetchall()
        cursor.execute(_FOREIGN_KEYS)
        foreign_keys = cursor.fetchall()
    distributed = {oid for oid, (_, nullable) in tables.items() if nullable is not None}
    blockers = [f"nullable tenant: {tables[oid][0]}.{TENANT_COLUMN}" for oid in distributed if tables[oid][1]]
    for table, index, primary, columns, on_expressions in unique_indexes:
        if table in distributed and (on_expressions or TENANT_COLUMN not in columns):
            named = (
                f"{tables[table][0]} ({_columns(columns)})"
                if primary
                else f"{tables[table][0]}.{index} ({_columns(columns)})"
            )
            blockers.append(f"{'primary key' if primary else 'unique'}: {named}")
    for table, target, columns, target_columns in foreign_keys:
        if table not in tables or target not in tables:
            continue
        arrow = f"{tables[table][0]} ({_columns(columns)}) -> {tables[target][0]} ({_columns(target_columns)})"
        if table not in distributed and target in distributed:
            blockers.append(f"reference table's foreign key: {arrow}")
        elif {table, target} <= distributed and (TENANT_COLUMN not in columns or TENANT_COLUMN not in target_columns):
            blockers.append(f"foreign key: {arrow}")
    return ShardingPlan(
        distributed=sorted(tables[oid][0] for oid in distributed),
        reference=sorted(name for oid, (name, _) in tables.items() if oid not in distributed),
        blockers=sorted(blockers),
    )
