"""Shared fixtures: small, fast scenarios built from the shipped default."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from abm import CommonPurposeModel

ROOT = Path(__file__).resolve().parent.parent
#: A small system (about 300 agents) for fast mechanism tests.
SMALL = {"population.residents": 240, "steps": 30}


@pytest.fixture
def small_model() -> CommonPurposeModel:
    return CommonPurposeModel(rng=7, overrides=SMALL)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dask_cluster(workers: int = 2) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A real Dask scheduler and `workers` workers (each under a nanny) on loopback.

    Yields the scheduler address and the processes (scheduler first); all are stopped on exit.
    """
    pytest.importorskip("distributed")
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    quiet_io = {
        "env": {**os.environ, "PYTHONPATH": str(ROOT)},
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    flags = ["--no-dashboard"]
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), *flags], **quiet_io)]
    try:
        for _ in range(workers):  # workers retry until the scheduler is up
            worker = [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1", *flags]
            procs.append(subprocess.Popen(worker, **quiet_io))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def model_pair(weeks: int = 12, **overrides: object) -> tuple[CommonPurposeModel, CommonPurposeModel]:
    """Two small models in the same state: the same seed and settings, run for the same weeks.

    For checking a fast path against the plain rule: run one on each and compare.
    """
    settings = {"population.residents": 240, **overrides}
    a, b = (CommonPurposeModel(rng=11, overrides=settings, steps=60) for _ in range(2))
    a.run(weeks)
    b.run(weeks)
    return a, b
