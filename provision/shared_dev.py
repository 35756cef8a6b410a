"""`provision dev --shared`: the local stack with a throwaway PostgreSQL cluster under the data
folder and two workers sharing it (PROVISION_DATABASE_URL), as several hosts would."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
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

    def start(self, timeout: float = 120.0) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            os.chmod(self.folder, 0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "-A", "trust", "-E", "UTF8", "--no-sync"]
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
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


async def _second_worker(settings: Settings, url: str, folder: Path, stop: asyncio.Event) -> None:
    """Once the dev server answers, a second `provision worker` with its own data folder."""
    from provision.dev import port_open, split_address

    host, port = split_address(settings.temporal_address)
    while not port_open(host, port):
        if stop.is_set():
            return
        await asyncio.sleep(0.5)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROVISION_DATABASE_URL": url, "PROVISION_DATA_DIR": str(folder)}
    # The first worker serves the metrics port; two processes cannot share it.
    env["PROVISION_WORKER_METRICS_ADDRESS"] = "off"
    if settings.codec_key_file:
        env["PROVISION_CODEC_KEY_FILE"] = str(settings.codec_key_file.resolve())
    log = (folder / "worker.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "provision"), "worker", env=env, stdout=log, stderr=log
    )
    log.close()
    print(f"Worker 2:      pid {process.pid}, data {folder} (log {folder / 'worker.log'})")
    try:
        await stop.wait()
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 20)
        if process.returncode is None:
            process.kill()


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
    settings = settings.model_copy(update={"database_url": _secret(url)})
    stop = asyncio.Event()
    second = asyncio.create_task(_second_worker(settings, url, data_dir / "worker-2", stop))
    try:
        return await run_dev(settings)
    finally:
        stop.set()
        await second
        postgres.stop()


def _secret(value: str) -> SecretStr:
    return SecretStr(value)
