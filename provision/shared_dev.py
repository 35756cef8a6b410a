"""`provision dev --shared`: the local stack with a throwaway PostgreSQL cluster under the data
folder and two workers sharing it (PROVISION_DATABASE_URL), as several hosts would."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from provision.settings import ConfigurationError, Settings

DATABASE = "provision"
INSTALL_HINT = (
    "PostgreSQL's initdb and pg_ctl are missing: `make postgres` installs Debian's postgresql "
    "package (as root), or install PostgreSQL and put its bin folder on PATH"
)


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name.split(".")[0] or 0),
    )
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL cluster in a folder, on 127.0.0.1 and a free port, trusted from loopback.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
    """

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder.resolve()
        self.data = self.folder / "data"
        self.log_file = self.folder / "postgres.log"
        self.port = port or free_port()
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise ConfigurationError(INSTALL_HINT)
        self.bin_dir = bin_dir

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        return ["runuser", "-u", "postgres", "--", *args]

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(
            self._as_owner(args), capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise ConfigurationError(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-1500:]}"
            )

    def _reachable_by_owner(self, path: Path) -> bool:
        return (
            subprocess.run(
                self._as_owner(["test", "-x", str(path)]), stdin=subprocess.DEVNULL
            ).returncode
            == 0
        )

    def _place_for_owner(self) -> None:
        """As root: the postgres user must reach the folder. When a parent is closed to it (a
        root-only temporary folder), the cluster lives in /tmp and the folder links to it."""
        if self.folder.is_symlink() or self._reachable_by_owner(self.folder.parent):
            self.folder.mkdir(parents=True, exist_ok=True)
        else:
            digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:12]
            elsewhere = Path(tempfile.gettempdir()) / f"provision-postgres-{digest}"
            elsewhere.mkdir(exist_ok=True)
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            self.folder.symlink_to(elsewhere, target_is_directory=True)
        target = self.folder.resolve()
        shutil.chown(target, "postgres", "postgres")
        os.chmod(target, 0o700)

    def start(self, timeout: float = 120.0) -> str:
        if os.geteuid() == 0:
            self._place_for_owner()
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
        # Through a link the postgres user could not follow: the real place.
        home = self.folder.resolve()
        self.data, self.log_file = home / "data", home / "postgres.log"
        if not (self.data / "PG_VERSION").exists():
            self._run(
                [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "-A", "trust", "-E", "UTF8", "--no-sync"]
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {home} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_file),
             "-o", options, "-w", "-t", str(int(timeout)), "start"]
        )  # fmt: skip
        self._create_database(timeout)
        return self.url

    def _create_database(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(
                    f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
                ) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f"CREATE DATABASE {DATABASE}")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ConfigurationError):
                self._run(
                    [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                     "stop"]
                )  # fmt: skip


def _worker_env(settings: Settings, folder: Path) -> dict[str, str]:
    """The environment of another `provision worker` on the same stack as this process."""
    env = {**os.environ, "PROVISION_DATA_DIR": str(folder)}
    env["TEMPORAL_ADDRESS"] = settings.temporal_address
    env["TEMPORAL_NAMESPACE"] = settings.temporal_namespace
    env["TEMPORAL_TASK_QUEUE"] = settings.task_queue
    # The first worker serves the metrics port; two processes cannot share it.
    env["PROVISION_WORKER_METRICS_ADDRESS"] = "off"
    secrets = {
        "PROVISION_DATABASE_URL": settings.database_url,
        # Notifications run on any worker: the second one posts to the same (local) Slack.
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
    }
    env.update({name: value.get_secret_value() for name, value in secrets.items() if value})
    env["SLACK_API_URL"] = settings.slack_api_url
    if settings.codec_key_file:
        env["PROVISION_CODEC_KEY_FILE"] = str(settings.codec_key_file.resolve())
    return env


class SecondWorker:
    """A second `provision worker` with its own data folder, started once the stack is up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, settings: Settings) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log_file = self.folder / "worker.log"
        with log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "provision"),
                "worker",
                env=_worker_env(settings, self.folder),
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )
        print(f"Worker 2:      pid {self.process.pid}, data {self.folder} (log {log_file})")

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 20)
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run_shared_dev(settings: Settings) -> int:
    """`provision dev` with PostgreSQL: the cluster under `<data>/postgres`, this process's worker
    on `<data>` and a second worker on `<data>/worker-2`, both on the shared state."""
    from provision.dev import dev_settings, run_dev

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = dev_settings(settings, data_dir)
    postgres = ThrowawayPostgres(data_dir / "postgres")
    url = postgres.start()
    print(f"PostgreSQL:    {url} (cluster {postgres.data}, log {postgres.log_file})")
    settings = settings.model_copy(update={"database_url": SecretStr(url)})
    second = SecondWorker(data_dir / "worker-2")
    try:
        return await run_dev(settings, on_ready=second.start)
    finally:
        await second.stop()
        postgres.stop()
