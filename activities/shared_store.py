"""Shared state of several workers in PostgreSQL (PROVISION_DATABASE_URL).

One database holds what a worker otherwise keeps in its data folder: workspace records (ownership
and the configuration a destroy needs), the apply ledger, and saved plans (AES-256-GCM with the
payload key ring when keys are set, sha256-pinned). Terraform state lives in the same database
through terraform's own `pg` backend (`PgStateBackend`), one schema per workspace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from activities.workspace_store import ApplyRecord
from workflows.models import WorkspaceRecord


class KeyRing(Protocol):
    """What sealing plans needs of the payload key ring (codec.keys.KeyRing, passed in by
    provision/; activities do not import codec/)."""

    @property
    def active_key_id(self) -> str: ...

    def key(self, key_id: str) -> bytes: ...

    def __contains__(self, key_id: object) -> bool: ...


log = logging.getLogger(__name__)

# Any constant: every worker takes the same advisory lock around migrations.
_MIGRATION_LOCK = 0x70726F76  # "prov"
_NONCE_BYTES = 12

# Applied in order, each once, recorded in schema_migrations. Append; never edit a shipped one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        -- terraform's pg backend creates this sequence on first init; concurrent first inits of
        -- two workspaces race on it, so it exists before any terraform runs.
        CREATE SEQUENCE IF NOT EXISTS public.global_states_id_seq AS bigint;
        CREATE TABLE provision_workspaces (
            workspace text PRIMARY KEY,
            owner jsonb,
            target jsonb,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE provision_applies (
            workspace text NOT NULL,
            plan_id text NOT NULL,
            record jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (workspace, plan_id)
        );
        CREATE TABLE provision_plans (
            workspace text NOT NULL,
            plan_id text NOT NULL,
            sha256 text NOT NULL,
            -- NULL: stored in the clear (no payload keys on the worker that planned).
            key_id text,
            payload bytea NOT NULL,
            destroy boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (workspace, plan_id)
        );
        """,
    ),
)


class PlanRefused(Exception):
    """A saved plan is missing, cannot be decrypted, or is not the plan that was approved."""


@dataclass(frozen=True)
class StoredPlan:
    data: bytes
    destroy: bool


class SharedDatabase:
    """Connections to the shared database; one short connection per operation.

    Operations are single statements on small rows, so a connection per call keeps workers
    simple (no pool to size, nothing held across a database restart).
    """

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.url = url
        self.connect_timeout = connect_timeout

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(
            self.url, connect_timeout=self.connect_timeout, autocommit=True
        ) as conn:
            yield conn

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; safe when several workers start at once."""
        applied: list[int] = []
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        if applied:
            log.info("shared database: applied migrations %s", applied)
        return applied


class PgWorkspaceStore:
    """The apply ledger (activities/workspace_store.py's protocol) in `provision_applies`."""

    def __init__(self, db: SharedDatabase) -> None:
        self.db = db

    def load_apply(self, workspace: str, plan_id: str) -> ApplyRecord | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT record FROM provision_applies WHERE workspace = %s AND plan_id = %s",
                (workspace, plan_id),
            ).fetchone()
        return ApplyRecord.model_validate(row[0]) if row else None

    def save_apply(self, workspace: str, record: ApplyRecord) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO provision_applies (workspace, plan_id, record) VALUES (%s, %s, %s)"
                " ON CONFLICT (workspace, plan_id)"
                " DO UPDATE SET record = EXCLUDED.record, updated_at = now()",
                (workspace, record.plan_id, Jsonb(record.model_dump(mode="json"))),
            )


class PgWorkspaceRecords:
    """Workspace ownership (activities/workspaces.py's protocol) and the configuration record
    a destroy reads (what `workspace.json` holds on one worker), in `provision_workspaces`."""

    def __init__(self, db: SharedDatabase) -> None:
        self.db = db

    def read(self, workspace: str) -> WorkspaceRecord | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT owner FROM provision_workspaces WHERE workspace = %s", (workspace,)
            ).fetchone()
        return WorkspaceRecord.model_validate(row[0]) if row and row[0] else None

    def write(self, record: WorkspaceRecord) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO provision_workspaces (workspace, owner) VALUES (%s, %s)"
                " ON CONFLICT (workspace)"
                " DO UPDATE SET owner = EXCLUDED.owner, updated_at = now()",
                (record.workspace, Jsonb(record.model_dump(mode="json"))),
            )

    def read_target(self, workspace: str) -> dict | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT target FROM provision_workspaces WHERE workspace = %s", (workspace,)
            ).fetchone()
        return row[0] if row and row[0] else None

    def write_target(self, workspace: str, target: dict) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO provision_workspaces (workspace, target) VALUES (%s, %s)"
                " ON CONFLICT (workspace)"
                " DO UPDATE SET target = EXCLUDED.target, updated_at = now()",
                (workspace, Jsonb(target)),
            )


class PgPlanStore:
    """Saved plan files, fetched by whichever worker applies.

    A plan file holds the configuration's variables and planned values in plain text, so with a
    key ring it is sealed with the ring's active key (AES-256-GCM, bound to its workspace and plan
    id so a row cannot be swapped for another); every key of the ring opens it. The sha256 is of
    the plan file itself, the value the workflow pinned when the plan was checked.
    """

    def __init__(self, db: SharedDatabase, key_ring: KeyRing | None = None) -> None:
        self.db = db
        self.key_ring = key_ring

    @staticmethod
    def _aad(workspace: str, plan_id: str) -> bytes:
        return f"provision-plan\x00{workspace}\x00{plan_id}".encode()

    def save(self, workspace: str, plan_id: str, data: bytes, *, destroy: bool = False) -> str:
        """Store a plan (replacing the workspace's older plans); return its sha256."""
        sha256 = hashlib.sha256(data).hexdigest()
        key_id, payload = None, data
        if self.key_ring is not None:
            key_id = self.key_ring.active_key_id
            nonce = os.urandom(_NONCE_BYTES)
            sealed = AESGCM(self.key_ring.key(key_id)).encrypt(
                nonce, data, self._aad(workspace, plan_id)
            )
            payload = nonce + sealed
        with self.db.connect() as conn, conn.transaction():
            # One plan per workspace is ever applied next: older ones can only be stale.
            conn.execute(
                "DELETE FROM provision_plans WHERE workspace = %s AND plan_id <> %s",
                (workspace, plan_id),
            )
            conn.execute(
                "INSERT INTO provision_plans"
                " (workspace, plan_id, sha256, key_id, payload, destroy)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (workspace, plan_id) DO UPDATE SET"
                " sha256 = EXCLUDED.sha256, key_id = EXCLUDED.key_id,"
                " payload = EXCLUDED.payload, destroy = EXCLUDED.destroy, created_at = now()",
                (workspace, plan_id, sha256, key_id, payload, destroy),
            )
        return sha256

    def fetch(self, workspace: str, plan_id: str, expected_sha256: str) -> StoredPlan:
        """The plan file, or PlanRefused when it is not exactly the plan that was approved."""
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT sha256, key_id, payload, destroy FROM provision_plans"
                " WHERE workspace = %s AND plan_id = %s",
                (workspace, plan_id),
            ).fetchone()
        if row is None:
            raise PlanRefused(f"the saved plan {plan_id} is not in the shared database: replan")
        sha256, key_id, payload = row[0], row[1], bytes(row[2])
        if key_id is None:
            if self.key_ring is not None:
                raise PlanRefused(
                    f"the saved plan {plan_id} is stored unencrypted but this worker encrypts "
                    "plans: refusing it, replan"
                )
            data = payload
        else:
            if self.key_ring is None or key_id not in self.key_ring:
                raise PlanRefused(
                    f"the saved plan {plan_id} was sealed with a key this worker does not hold"
                )
            try:
                data = AESGCM(self.key_ring.key(key_id)).decrypt(
                    payload[:_NONCE_BYTES], payload[_NONCE_BYTES:], self._aad(workspace, plan_id)
                )
            except (InvalidTag, ValueError):
                raise PlanRefused(
                    f"the saved plan {plan_id} does not decrypt: it was altered in the database"
                ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256 or actual != sha256:
            raise PlanRefused(
                "the saved plan in the shared database does not match the plan that was "
                "checked and approved (sha256)"
            )
        return StoredPlan(data, bool(row[3]))

    def discard(self, workspace: str, plan_id: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "DELETE FROM provision_plans WHERE workspace = %s AND plan_id = %s",
                (workspace, plan_id),
            )


_BACKEND_DECLARED = re.compile(r'^\s*backend\s+"', re.MULTILINE)
_SCHEMA_UNSAFE = re.compile(r"[^a-z0-9_]+")
# libpq parameters terraform's driver (lib/pq) reads from its environment.
_ENV_FOR = {"user": "PGUSER", "password": "PGPASSWORD", "sslcert": "PGSSLCERT",
            "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT"}  # fmt: skip
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def declares_backend(files: dict[str, str]) -> bool:
    """Whether a configuration (file name → text) brings its own backend."""
    for name, text in files.items():
        if name.endswith(".tf.json"):
            try:
                blocks = json.loads(text).get("terraform")
            except (ValueError, AttributeError):
                continue
            blocks = blocks if isinstance(blocks, list) else [blocks]
            if any(isinstance(b, dict) and "backend" in b for b in blocks):
                return True
        elif name.endswith(".tf") and _BACKEND_DECLARED.search(text):
            return True
    return False


@dataclass(frozen=True)
class PgStateBackend:
    """terraform's `pg` backend on the shared database, one schema per workspace.

    Terraform 1.0 reads its connection string only from the backend configuration, which it
    copies into `.terraform/terraform.tfstate` and into every saved plan. So the connection
    string handed to terraform carries no credentials: user, password and client certificates
    reach its driver (lib/pq) through PGUSER/PGPASSWORD/… in terraform's environment.
    """

    conn_str: str
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_url(cls, url: str) -> PgStateBackend:
        params = conninfo_to_dict(url)
        env = {var: str(params.pop(key)) for key, var in _ENV_FOR.items() if params.get(key)}
        host = str(params.get("host") or "localhost")
        # lib/pq knows no `prefer`: loopback and sockets go in the clear, anything else TLS.
        sslmode = params.get("sslmode") or (
            "disable" if host in _LOOPBACK or host.startswith("/") else "require"
        )
        parts = {
            "host": host,
            "port": params.get("port") or "5432",
            "dbname": params.get("dbname") or env.get("PGUSER") or "postgres",
            "sslmode": sslmode,
            "connect_timeout": params.get("connect_timeout") or "10",
        }
        conn_str = " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items())
        return cls(conn_str, env)

    @staticmethod
    def schema_for(workspace: str) -> str:
        """A schema name Postgres accepts unquoted (the backend does not quote it), unique per
        workspace and at most 63 characters."""
        digest = hashlib.sha256(workspace.encode()).hexdigest()[:10]
        readable = _SCHEMA_UNSAFE.sub("_", workspace.lower()).strip("_")[:40]
        return f"tfstate_{readable}_{digest}"

    def backend_config(self, workspace: str) -> str:
        return (
            f"conn_str = {json.dumps(self.conn_str)}\n"
            f"schema_name = {json.dumps(self.schema_for(workspace))}\n"
        )


def _quote(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
