"""Wiring of the shared state (PROVISION_DATABASE_URL): the stores a worker uses instead of its
data folder, opened and migrated once at worker start."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from activities.shared_store import (
    PgPlanStore,
    PgStateBackend,
    PgWorkspaceRecords,
    PgWorkspaceStore,
    SharedDatabase,
)
from provision.client import key_ring_for
from provision.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedState:
    database: SharedDatabase
    state_backend: PgStateBackend
    records: PgWorkspaceRecords
    applies: PgWorkspaceStore
    plans: PgPlanStore

    @classmethod
    def open(cls, settings: Settings) -> SharedState:
        """Connect, apply missing migrations, and build the stores. Saved plans are sealed with
        the payload key ring when one is configured (PROVISION_CODEC_KEYS / _KEY_FILE)."""
        assert settings.database_url is not None
        url = settings.database_url.get_secret_value()
        database = SharedDatabase(url)
        try:
            database.migrate()
            backend = PgStateBackend.from_url(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"PROVISION_DATABASE_URL: {exc}") from None
        except psycopg.OperationalError as exc:
            # libpq's message names host and port, never the password.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(f"PROVISION_DATABASE_URL: cannot connect: {reason}") from None
        key_ring = key_ring_for(settings)
        log.info(
            "shared state in PostgreSQL: terraform state (pg backend), saved plans (%s), "
            "workspace records and the apply ledger",
            f"encrypted with key {key_ring.active_key_id}" if key_ring else "NOT encrypted",
        )
        return cls(
            database=database,
            state_backend=backend,
            records=PgWorkspaceRecords(database),
            applies=PgWorkspaceStore(database),
            plans=PgPlanStore(database, key_ring),
        )
