"""Loading a served model (a registered version, verified) and running it with opportunistic micro-batching.

A version is restored from the registry's store (each file re-hashed against
the version record) into a temporary directory, and
:meth:`~calibgate.export.serving.Predictor.from_run` verifies the whole run and
hashes every file it loads against the run manifest; the bytes hashed are the
bytes served. The
directory is removed once the session holds the graph in memory.

:class:`BatchingModel` shares one onnxruntime session (one intra-op thread)
between ``workers`` threads. onnxruntime releases the GIL inside ``run``, so
requests run in parallel; a worker that frees up takes *every* request queued
meanwhile (up to ``max_batch`` texts) as one batch, which amortises the
per-call overhead under load and adds no wait at low load (no timer).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from calibgate.errors import CalibgateError, ModelError, RegistryError


@dataclass
class ServedModel:
    """A verified predictor and the name clients and logs see (``name@vX.Y.Z`` or the run id)."""

    ref: str
    predictor: object
    run_id: str


def load_served(ref: str, *, repo: str | Path | None = None, precision: str = "fp32") -> ServedModel:
    """Load ``ref``: ``name@vX.Y.Z`` from the registry (verified), or a run directory with an export."""
    from calibgate.export.serving import Predictor
    from calibgate.registry.tags import is_valid_name, is_valid_version
    from calibgate.runs import read_manifest

    path = Path(ref)
    name, _, version = ref.rpartition("@")
    registered = is_valid_name(name) and is_valid_version(version)  # name@vX.Y.Z; '/tmp/a@b/run' is a directory
    if not registered and (path.is_dir() or "@" not in ref):
        if not path.is_dir():
            raise ModelError(f"'{ref}' is neither name@vX.Y.Z nor a run directory", fix="pass a registered version, e.g. router@v1.2.0")
        manifest = read_manifest(path)
        return ServedModel(ref=manifest.run_id, predictor=Predictor.from_run(path, precision=precision, threads=1),
                           run_id=manifest.run_id)
    from calibgate.registry.api import fetch_version, show_version

    detail = show_version(ref, repo=repo)
    if detail.deprecated:
        raise RegistryError(f"{ref} is deprecated and must not be served", fix="serve a current version (calibgate registry list)")
    if detail.record is None:
        raise RegistryError(f"{ref} has no calibgate record to verify it by", fix="register it with calibgate")
    tmp = Path(tempfile.mkdtemp(prefix="calibgate-serve-"))
    try:
        run_dir = fetch_version(ref, tmp / "run", repo=repo)
        manifest = read_manifest(run_dir)
        if manifest.run_id != detail.record.run_id:
            raise RegistryError(f"{ref}: the stored run is '{manifest.run_id}', the record says '{detail.record.run_id}'",
                                fix="re-register the version from its run")
        try:
            predictor = Predictor.from_run(run_dir, precision=precision, threads=1)
        except CalibgateError as exc:  # its fix names the temporary restore, gone in a moment: name the version instead
            raise type(exc)(f"{ref}: {exc.message.replace(str(run_dir), 'the restored run')}",
                            fix=f"serve a version that was exported before registering (calibgate export --run runs/"
                                f"{detail.record.run_id}{' --quantize int8' if precision == 'int8' else ''}, then register it)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ServedModel(ref=f"{detail.name}@{detail.version}", predictor=predictor, run_id=manifest.run_id)


class BatchingModel:
    """Async front of a :class:`ServedModel`: ``await predict(texts)`` -> (records, latency_ms)."""

    def __init__(self, model: ServedModel, *, workers: int, max_batch: int):
        self.model = model
        self.workers = workers
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="calibgate-ort")
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def ref(self) -> str:
        return self.model.ref

    @property
    def backlog(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def predict(self, texts: list[str]) -> tuple[list[dict], float]:
        assert self._queue is not None, "start() first"
        future = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        self._queue.put_nowait((texts, future))
        records = await future
        return records, (time.perf_counter() - started) * 1000

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            batch = [await queue.get()]
            size = len(batch[0][0])
            while size < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
                size += len(batch[-1][0])
            texts = [t for item, _ in batch for t in item]
            try:
                records = await loop.run_in_executor(self._executor, self._infer, texts)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure, the worker lives on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for item, future in batch:
                if not future.done():
                    future.set_result(records[start : start + len(item)])
                start += len(item)

    def _infer(self, texts: list[str]) -> list[dict]:
        from calibgate.export.serving import records

        predictor = self.model.predictor
        return records(predictor.logits(texts, batch_size=self.max_batch), predictor.label_names)
