"""The processes behind ``serve`` and ``socket``: THREADWISE_WORKERS answer workers, restarted when
one dies, and, when MILVUS_URI is a Milvus Lite file, one Milvus server process over that file.

A Milvus Lite file can be open in one process only (milvus-lite takes a lock on it), so the front and
its workers share it through ``milvus-lite server --data-dir FILE``, a gRPC Milvus on loopback that
reads and writes the same file the one-process commands (``threadwise sync``) use.

Children get SIGKILL when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a killed front never
leaves workers answering behind a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from bot.settings import Settings
from bot.worker_metrics import DIR_VARIABLE

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds before a worker that died is started again
READY_TIMEOUT = 180.0  # seconds a worker may take to start (imports, database check) on a busy machine
READY_FD = "THREADWISE_READY_FD"  # a worker writes to this inherited pipe once it takes work
MILVUS_START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the parent goes (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _spawn(
    *command: str, env: dict[str, str], pass_fds: tuple[int, ...] = (), output: int | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command,
        env=env,
        preexec_fn=_die_with_parent,
        pass_fds=pass_fds,
        stdout=output,
        stderr=asyncio.subprocess.STDOUT if output is not None else None,
    )


async def _relay(stream: asyncio.StreamReader, logger: logging.Logger) -> None:
    """A child's own output, line by line, into this process's logs (so JSON logs stay JSON)."""
    while line := await stream.readline():
        logger.info("%s", line.decode(errors="replace").rstrip())


def tell_ready() -> None:
    """In a worker started here: say that it takes work now (nothing when started otherwise)."""
    fd = os.environ.pop(READY_FD, None)
    if fd:
        with contextlib.suppress(OSError):
            os.write(int(fd), b"ready")
            os.close(int(fd))


class Supervisor:
    def __init__(self, settings: Settings, workers: int | None = None):
        self.settings = settings
        self.count = settings.workers if workers is None else workers
        self.env = dict(os.environ)
        self._metrics_dir: tempfile.TemporaryDirectory | None = None
        self.workers: list[asyncio.subprocess.Process | None] = [None] * self.count
        self.milvus: asyncio.subprocess.Process | None = None
        self._watchers: list[asyncio.Task] = []
        self._relays: list[asyncio.Task] = []
        self._stopping = False

    async def start(self) -> Settings:
        """Start the children; the settings the front runs with (MILVUS_URI on the shared server)."""
        settings = self.settings
        if self.count:  # the workers' counters, summed into this front's /metrics
            self._metrics_dir = tempfile.TemporaryDirectory(prefix="threadwise-metrics-")
            self.env[DIR_VARIABLE] = os.environ[DIR_VARIABLE] = self._metrics_dir.name
        if self.count and settings.knowledge().is_lite:
            uri = await self._start_milvus(Path(settings.milvus_uri).resolve())
            settings = settings.model_copy(update={"milvus_uri": uri})
            self.env["MILVUS_URI"] = uri
        ready = [await self._start_worker(index) for index in range(self.count)]
        if ready:  # the front listens once it can answer
            await asyncio.gather(*ready)
            log.info("%d answer workers ready", self.count)
        for index in range(self.count):
            self._watchers.append(asyncio.get_running_loop().create_task(self._watch(index)))
        return settings

    async def _start_milvus(self, data_dir: Path) -> str:
        port = _free_port()
        self.milvus = await _spawn(
            sys.executable, "-m", "milvus_lite", "server",
            "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
            env={k: v for k, v in self.env.items() if k != "MILVUS_URI"},  # pymilvus reads it at import
            output=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.milvus.stdout is not None
        self._relays.append(
            asyncio.get_running_loop().create_task(
                _relay(self.milvus.stdout, logging.getLogger("milvus_lite"))
            )
        )
        deadline = time.monotonic() + MILVUS_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.milvus.returncode is not None:
                raise RuntimeError(f"the Milvus server for {data_dir} exited with {self.milvus.returncode}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                log.info("Milvus server for %s on 127.0.0.1:%d", data_dir, port)
                return f"http://127.0.0.1:{port}"
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the Milvus server for {data_dir} did not start in {MILVUS_START_TIMEOUT:g} s")

    async def _start_worker(self, index: int) -> asyncio.Future:
        """Start worker ``index``; a future done when it is ready (or gone)."""
        read, write = os.pipe()
        try:
            self.workers[index] = process = await _spawn(
                sys.executable, "-m", "bot.cli", "worker",
                env={**self.env, READY_FD: str(write)}, pass_fds=(write,),
            )  # fmt: skip
        finally:
            os.close(write)

        def wait_ready() -> None:
            with os.fdopen(read, "rb") as pipe:
                pipe.read()  # "ready", or nothing when the worker exits first

        async def ready() -> None:
            try:
                await asyncio.wait_for(asyncio.to_thread(wait_ready), READY_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "answer worker %d (pid %d) is not ready after %.0f s", index, process.pid, READY_TIMEOUT
                )

        return asyncio.ensure_future(ready())

    async def _watch(self, index: int) -> None:
        while not self._stopping:
            process = self.workers[index]
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            log.error("answer worker %d (pid %d) exited with %s; starting it again", index, process.pid, code)
            await asyncio.sleep(RESTART_DELAY)
            if not self._stopping:
                await self._start_worker(index)

    def pids(self) -> list[int]:
        """The running workers' process ids (tests)."""
        return [p.pid for p in self.workers if p is not None and p.returncode is None]

    async def stop(self) -> None:
        """SIGTERM to every worker (they hand unfinished claims back), then the Milvus server."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        running = [p for p in self.workers if p is not None and p.returncode is None]
        await _terminate(running)
        if self.milvus is not None and self.milvus.returncode is None:
            await _terminate([self.milvus])
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._metrics_dir is not None:
            os.environ.pop(DIR_VARIABLE, None)
            self._metrics_dir.cleanup()


async def _terminate(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("pid %d did not stop in %.0f s; killing it", process.pid, STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


__all__ = ["Supervisor"]
