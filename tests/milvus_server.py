"""A real Milvus server process for the tests: ``milvus-lite server``.

The milvus-lite package ships a gRPC server speaking the same protocol as a Milvus standalone
(``python -m milvus_lite server``), so the store's server path (``MILVUS_URI=http://...``) is tested
against a real server on loopback, on a clean clone, with nothing else to install.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MilvusServer:
    """``milvus-lite server`` on a free loopback port, its data in ``data_dir``."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> MilvusServer:
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir)]
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_it_answers(timeout)
        return self

    def _wait_until_it_answers(self, timeout: float) -> None:
        from knowledge.store.connection import milvus_client

        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"milvus-lite server exited with {self.process.returncode}: {self.output()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                client = milvus_client(self.uri, timeout=5)
                try:
                    client.list_collections(timeout=5)
                    return
                finally:
                    client.close()
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"milvus-lite server did not answer on {self.uri} within {timeout:g}s: {self.output()}"
                    ) from None
                time.sleep(0.2)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(name="milvus_uri", params=["lite", pytest.param("server", marks=pytest.mark.milvus_server)])
def lite_and_server_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Imported into a test module, its tests run on a Milvus Lite file and on the server process."""
    if request.param == "lite":
        return str(tmp_path / "milvus.db")
    return request.getfixturevalue("milvus_server").uri
