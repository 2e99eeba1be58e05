"""One generation engine per loaded base model: every request, every w and every family in one running batch.

Every answer the app, the API, ``Policy.generate``/``stream`` and the front
evaluation produce goes through ``engine_for(model)``. A request (a ``Job``)
is one or more rows, each carrying its prompt ids, its family's per-rank gains
at its w, and its own sampling settings. One driver thread per model runs the
loop (continuous batching):

1. admit waiting rows into free slots: prefill them together, sample their
   first token, merge their key/value cache into the running batch
   (``kvbatch.py``: left padding, per-row position ids and masks);
2. one decode step for every live row, all families and w in one forward:
   gains over the union of the attached banks, zero outside each row's family
   (``bank.UNION``);
3. each row takes its token (greedy, or its own seeded sampler), streams it
   to its job, and leaves the batch at once when it is finished (EOS, its
   max tokens, a stop string) or its job was cancelled, freeing its slot.

A bad request fails alone: rows are validated when submitted, in the caller's
thread, and a prefill that fails is retried job by job, so only the job that
caused it fails. The waiting queue is bounded: ``submit(block=False)`` past
the limit raises ``EngineBusy`` ("busy, try again"); ``block=True`` (library
use, evaluation) waits for room instead.

The driver starts with the first request and ends after a short idle spell,
so engines for temporary models leave no thread behind, and a process forked
after a run (ZeroGPU) starts its own. Settings: ``Engine(...)`` arguments or
the ``PARETOAPP_ENGINE_*`` environment variables (see ``EngineConfig``).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from . import settings
from .bank import UNION, ActiveGains, layout_of
from .errors import EngineBusy, RequestError
from .kvbatch import DynamicBatch, StaticBatch, apply_order, prefill
from .sampling import Sampler, make_generator, next_tokens

log = logging.getLogger(__name__)


@dataclass
class Row:
    """One answer to generate."""
    ids: list[int]
    max_new_tokens: int
    gains: tuple[str, torch.Tensor] | None = None  # (bank id, the family's per-rank gains [R]) or no bank
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    eos: frozenset[int] = frozenset()
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0   # OpenAI's, on the answer's tokens (sampling.py)
    frequency_penalty: float = 0.0


@dataclass
class EngineConfig:
    """How an engine runs; ``None`` picks the device's default."""
    max_batch: int | None = None    # live rows (slots); PARETOAPP_ENGINE_MAX_BATCH; 64
    max_waiting: int | None = None  # queued rows before "busy"; PARETOAPP_ENGINE_MAX_WAITING; 256
    decoder: str | None = None      # "dynamic" | "static"; PARETOAPP_ENGINE_DECODER; static on CUDA
    cache_len: int | None = None    # static decoder's columns; PARETOAPP_ENGINE_CACHE_LEN; min(context, 2048)
    graphs: bool | None = None      # CUDA graphs for the static decoder; PARETOAPP_ENGINE_GRAPHS; on with CUDA
    idle_exit_s: float = 2.0        # the driver thread ends after this long with nothing to do

    def resolved(self, device: torch.device, context: int) -> EngineConfig:
        cuda = device.type == "cuda"
        decoder = self.decoder or settings.ENGINE_DECODER.get() or ("static" if cuda else "dynamic")
        if decoder not in ("dynamic", "static"):
            raise ValueError(f"engine decoder must be 'dynamic' or 'static', not {decoder!r}")
        # ZeroGPU lends the GPU to one forked call at a time: no graphs kept across calls there (the default)
        graphs = self.graphs if self.graphs is not None else settings.ENGINE_GRAPHS.get()
        for name in ("max_batch", "max_waiting", "cache_len"):
            value = getattr(self, name)
            if value is not None and value < 1:  # an engine with no room would wait forever
                raise ValueError(f"engine {name} must be at least 1, got {value}; leave it unset for the default")
        return EngineConfig(
            max_batch=self.max_batch or settings.ENGINE_MAX_BATCH.get(),
            max_waiting=self.max_waiting or settings.ENGINE_MAX_WAITING.get(),
            decoder=decoder, graphs=graphs and cuda, idle_exit_s=self.idle_exit_s,
            cache_len=min(context, self.cache_len or settings.ENGINE_CACHE_LEN.get()))


class Job:
    """The rows of one request: their tokens as they come, cancel, result."""

    def __init__(self, rows: Sequence[Row], tokenizer=None, cancel: threading.Event | None = None,
                 max_active: int | None = None):
        self.rows = list(rows)
        self.tokenizer = tokenizer  # decodes the tail of a row for its stop strings
        self.max_active = max_active
        self.tokens: list[list[int]] = [[] for _ in self.rows]
        self.error: BaseException | None = None
        self.active = 0  # rows in the batch now (driver thread only)
        self._cancel = cancel or threading.Event()
        self._finished = [False] * len(self.rows)
        self._open = len(self.rows)
        self._version = 0
        self._cond = threading.Condition()

    # ---------------------------------------------------------------- caller side
    def cancel(self) -> None:
        """Stop this request: its rows leave the batch at the next step (tokens so far are its result).

        A no-op once every row has ended: the event may be the caller's own, and a set event
        reads as "stopped by the user" there (the chat labels such an answer "stopped").
        """
        with self._cond:
            if self._open:
                self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._open == 0

    @property
    def finished_rows(self) -> int:
        return len(self.rows) - self._open

    def updates(self, min_interval: float = 0.0) -> Iterator[list[list[int]]]:
        """Every row's tokens so far, each time some row got new ones, until the job is done.

        ``min_interval``: seconds between two snapshots (steps in between are
        merged into the next; the last one comes as soon as the job is done).
        """
        seen = 0
        while True:
            with self._cond:
                if seen and min_interval:
                    self._cond.wait_for(lambda: self._open == 0, min_interval)
                self._cond.wait_for(lambda seen=seen: self._version != seen or self._open == 0)
                if self.error is not None:
                    raise self.error
                changed, seen = self._version != seen, self._version
                snapshot, done = [list(t) for t in self.tokens], self._open == 0
            if changed:
                yield snapshot
            if done:
                return

    def result(self, timeout: float | None = None) -> list[list[int]]:
        with self._cond:
            if not self._cond.wait_for(lambda: self._open == 0, timeout):
                raise TimeoutError("generation did not finish in time")
            if self.error is not None:
                raise self.error
            return [list(t) for t in self.tokens]

    # ---------------------------------------------------------------- driver side
    def _publish(self, appended: Sequence[tuple[int, int]], finished: Sequence[int]) -> None:
        with self._cond:
            for i, tok in appended:
                self.tokens[i].append(tok)
            for i in finished:
                if not self._finished[i]:
                    self._finished[i] = True
                    self._open -= 1
            self._version += 1
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._open:
                self.error = exc
                self._finished = [True] * len(self.rows)
                self._open = 0
                self._cond.notify_all()
        self._cancel.set()  # its other rows leave the batch too


@dataclass
class _Live:
    """An admitted row."""
    job: Job
    index: int
    sampler: Sampler
    last: int = -1
    generated: int = 0
    span: tuple[int, int] | None = None  # its nonzero gains on the union axis
    gains: torch.Tensor | None = field(default=None, repr=False)  # its union gain row (CPU)

    @property
    def row(self) -> Row:
        return self.job.rows[self.index]


class Engine:
    """Continuous batching over one model (see the module docstring)."""

    def __init__(self, model, config: EngineConfig | None = None):
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        cfg = model.config
        self.context = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))
        self.config = (config or EngineConfig()).resolved(self.device, self.context)
        self.max_context = self.config.cache_len if self.config.decoder == "static" else self.context
        self.vocab = int(model.get_input_embeddings().weight.shape[0])
        self._model = weakref.ref(model)
        self.layout = layout_of(model)
        self._reset_state()

    def _reset_state(self) -> None:
        self._pid = os.getpid()
        self._cv = threading.Condition()
        self._waiting: deque[tuple[Job, int]] = deque()
        self._driver: threading.Thread | None = None
        self._live: list[_Live] = []
        self._kv = None
        self._buf: torch.Tensor | None = None  # the union gains of the live rows, batch order, static address
        self._layout_version = -1

    # ---------------------------------------------------------------- submitting
    def submit(self, rows: Sequence[Row], tokenizer=None, cancel: threading.Event | None = None,
               block: bool = True, max_active: int | None = None) -> Job:
        """Queue a request; raises ``RequestError`` for a bad row and ``EngineBusy`` when full (block=False)."""
        if os.getpid() != self._pid:  # forked (ZeroGPU): the parent's thread and locks are not ours
            self._reset_state()
        rows = list(rows)
        if not rows:
            raise RequestError("a request needs at least one row")
        if max_active is not None and not (isinstance(max_active, int) and max_active >= 1):
            raise RequestError(f"max_active must be a whole number of at least 1, got {max_active!r}; "
                               "ask for 1 or more rows at once (None: no limit)")
        for i, row in enumerate(rows):
            self._check(i, row)
        job = Job(rows, tokenizer, cancel, max_active)
        with self._cv:
            limit = self.config.max_waiting
            if not block and len(self._waiting) + len(rows) > limit:
                raise EngineBusy(f"the model is busy ({len(self._live)} answers being written, "
                                 f"{len(self._waiting)} waiting); try again in a few seconds")
            self._cv.wait_for(lambda: len(self._waiting) < limit or job.cancelled)
            self._waiting.extend((job, i) for i in range(len(rows)))
            if self._driver is None:
                self._driver = threading.Thread(target=self._run, name="paretoapp-engine", daemon=True)
                self._driver.start()
            self._cv.notify_all()
        return job

    def _check(self, i: int, row: Row) -> None:
        where = f"row {i}: "
        if not row.ids or not all(isinstance(t, int) and 0 <= t < self.vocab for t in row.ids):
            raise RequestError(where + f"prompt ids must be a non-empty list of token ids below {self.vocab}")
        if int(row.max_new_tokens) < 1:
            raise RequestError(where + "max_new_tokens must be at least 1")
        if len(row.ids) + row.max_new_tokens > self.max_context:
            raise RequestError(where + f"{len(row.ids)} prompt tokens + {row.max_new_tokens} new tokens exceed the "
                               f"{self.max_context} this engine holds; shorten the prompt or lower max_new_tokens")
        if row.do_sample and not (row.temperature > 0 and 0 < row.top_p <= 1):
            raise RequestError(where + "sampling needs temperature > 0 and top_p in (0, 1]")
        if not (math.isfinite(row.repetition_penalty) and row.repetition_penalty > 0):
            raise RequestError(where + "repetition_penalty must be a positive number (1 = none)")
        if not all(math.isfinite(p) for p in (row.presence_penalty, row.frequency_penalty)):
            raise RequestError(where + "presence_penalty and frequency_penalty must be finite numbers (0 = none)")
        if row.gains is not None:
            bank_id, g = row.gains
            span = self.layout.offsets.get(bank_id)  # no lock: a step may hold it, and this is one read
            if span is None:
                raise RequestError(where + f"family bank {bank_id!r} is not attached to this model")
            rank = span[1]
            if tuple(g.shape) != (rank,) or not torch.isfinite(g).all():
                raise RequestError(where + f"gains must be {rank} finite numbers, got shape {tuple(g.shape)}")

    # ---------------------------------------------------------------- the loop
    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    if not self._waiting and not self._live:
                        if not _EXITING.is_set():
                            self._cv.wait(self.config.idle_exit_s)
                        if not self._waiting and not self._live:
                            self._driver = None
                            return
                model = self._model()
                if model is None:
                    self._fail_all(RuntimeError("the model was unloaded"))
                    continue
                try:
                    self._retire([i for i, r in enumerate(self._live) if r.job.cancelled])
                    self._admit(model)
                    if self._live:
                        self._decode(model)
                except Exception as exc:  # a failed shared step fails its rows, never the engine
                    log.exception("decode step failed")
                    self._fail_all(exc, waiting=False)
                del model

    def _fail_all(self, exc: BaseException, waiting: bool = True) -> None:
        for r in self._live:
            r.job._fail(exc)
        self._live, self._kv = [], None
        if waiting:
            with self._cv:
                for job, _ in self._waiting:
                    job._fail(exc)
                self._waiting.clear()
                self._cv.notify_all()

    def _admit(self, model) -> None:
        if self._kv is None and self._waiting:
            self._kv = self._new_kv(model)
        capacity = self._kv.slots if isinstance(self._kv, StaticBatch) else self.config.max_batch
        with self._cv:
            free = capacity - len(self._live)
            take, rest = [], deque()
            for job, i in self._waiting:
                if job.cancelled:
                    job._publish((), [i])
                elif free > 0 and (job.max_active is None or job.active < job.max_active):
                    take.append((job, i))
                    job.active += 1
                    free -= 1
                else:
                    rest.append((job, i))
            self._waiting = rest
            self._cv.notify_all()
        if not take:
            return
        try:
            self._prefill(model, take)
        except Exception as exc:
            jobs = list(dict.fromkeys(job for job, _ in take))
            if len(jobs) == 1:
                jobs[0]._fail(exc)
                return
            for job in jobs:  # find the request that failed; the others go ahead
                try:
                    self._prefill(model, [t for t in take if t[0] is job])
                except Exception as one:
                    job._fail(one)

    def _prefill(self, model, take: list[tuple[Job, int]]) -> None:
        new = [self._live_row(job, i) for job, i in take]
        with self.layout.lock:
            self._sync_layout()
            for r in new:
                self._union_row(r)
            g = torch.stack([r.gains for r in new]).to(self.device, self.dtype) if self._buf is not None else None
            spans = [r.span for r in new if r.span is not None]
            active = None if not spans else ActiveGains(UNION, g, min(s for s, _ in spans),
                                                        max(e for _, e in spans))
            cache, lengths, logits = prefill(model, [r.row.ids for r in new], active, self.device)
            self._kv.admit(cache, lengths)
        n = len(self._live)
        self._live += new
        if g is not None:
            self._buf[n:n + len(new)] = g
        self._accept(range(n, n + len(new)), next_tokens(logits, [r.sampler for r in new]))

    def _decode(self, model) -> None:
        with self.layout.lock:
            self._sync_layout()
            logits = self._kv.step([r.last for r in self._live], self._active_gains())
        self._accept(range(len(self._live)), next_tokens(logits, [r.sampler for r in self._live]))

    def _accept(self, indices: range, tokens: list[int]) -> None:
        """Give each row its token; stream; retire the rows that are done."""
        per_job: dict[Job, tuple[list, list]] = {}
        done = []
        for i, tok in zip(indices, tokens):
            r = self._live[i]
            row = r.row
            appended, finished = per_job.setdefault(r.job, ([], []))
            if tok in row.eos:
                finished.append(r.index)
                done.append(i)
                continue
            appended.append((r.index, tok))
            r.sampler.see(tok)
            r.last, r.generated = tok, r.generated + 1
            if r.generated >= row.max_new_tokens or (row.stop and self._hit_stop(r, tok)):
                finished.append(r.index)
                done.append(i)
        for job, (appended, finished) in per_job.items():
            job._publish(appended, finished)
        if done:
            self._retire(done)

    def _hit_stop(self, r: _Live, tok: int) -> bool:
        tokens = r.job.tokens[r.index][-(4 * max(len(s) for s in r.row.stop) + 8):] + [tok]
        text = r.job.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s and s in text for s in r.row.stop)

    def _retire(self, rows: Sequence[int]) -> None:
        if not rows:
            return
        gone = set(rows)
        for i in gone:
            r = self._live[i]
            r.job.active -= 1
            if r.job.cancelled:
                r.job._publish((), [r.index])
        order = self._kv.keep([i for i in range(len(self._live)) if i not in gone])
        self._live = [self._live[i] for i in order]
        if self._buf is not None:
            apply_order(self._buf, order)
            self._buf[len(order):].zero_()
        if not self._live:
            with self._cv:
                self._cv.notify_all()

    # ---------------------------------------------------------------- gains
    def _live_row(self, job: Job, i: int) -> _Live:
        row = job.rows[i]
        seed = row.seed if row.seed is not None else int(torch.randint(2**62, ()))
        sampler = Sampler(row.do_sample, row.temperature, row.top_p,
                          make_generator(seed, self.device) if row.do_sample else None, row.repetition_penalty,
                          set(row.ids) if row.repetition_penalty != 1.0 else None, row.presence_penalty,
                          row.frequency_penalty, {} if row.presence_penalty or row.frequency_penalty else None)
        return _Live(job, i, sampler)

    def _union_row(self, r: _Live) -> None:
        """The row's gains placed on the union axis (zero outside its family), and their nonzero span."""
        r.gains, r.span = torch.zeros(self.layout.total, dtype=torch.float64), None
        if r.row.gains is None:
            return
        bank_id, g = r.row.gains
        if bank_id not in self.layout.offsets:
            raise RequestError(f"family bank {bank_id!r} was detached from the model")
        start, stop = self.layout.span(bank_id)
        r.gains[start:stop] = g
        nz = g.nonzero().flatten()
        if len(nz):
            r.span = (start + int(nz[0]), start + int(nz[-1]) + 1)

    def _sync_layout(self) -> None:
        """Rebuild the gain buffer when a family was attached or detached (caller holds the layout lock)."""
        if self._layout_version == self.layout.version:
            return
        self._layout_version = self.layout.version
        total = self.layout.total
        self._buf = torch.zeros(self.config.max_batch, total, dtype=self.dtype, device=self.device) if total else None
        for i, r in enumerate(self._live):
            try:
                self._union_row(r)
            except RequestError as exc:
                r.job._fail(exc)
            if self._buf is not None:
                self._buf[i] = r.gains.to(self.device, self.dtype)
        if isinstance(self._kv, StaticBatch):
            self._kv.invalidate()

    def _active_gains(self) -> ActiveGains | None:
        spans = [r.span for r in self._live if r.span is not None]
        if not spans:
            return None
        start, stop = min(s for s, _ in spans), max(e for _, e in spans)
        return ActiveGains(UNION, self._buf[: len(self._live)], start, None if stop == self.layout.total else stop)

    def _static_gains(self, b: int) -> ActiveGains | None:
        return None if self._buf is None else ActiveGains(UNION, self._buf[:b])

    def _new_kv(self, model):
        if self.config.decoder == "static":
            kv = StaticBatch(model, self.device, self.config.max_batch, self.config.cache_len,
                             self._static_gains, self.config.graphs)
            kv.allocate(prefill(model, [[0]], None, self.device)[0])  # one token: the cache's shapes
            return kv
        return DynamicBatch(model, self.device)


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()
_EXITING = threading.Event()


@atexit.register
def _stop_drivers() -> None:
    """At interpreter exit, let idle drivers end now (a thread killed inside torch aborts the process)."""
    _EXITING.set()
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
    for engine in engines:
        with engine._cv:
            engine._cv.notify_all()
            driver = engine._driver
        if driver is not None:
            driver.join(timeout=5)


def engine_for(model, config: EngineConfig | None = None) -> Engine:
    """The model's engine (made on first use; ``config`` applies only then)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(model)
        if engine is None:
            engine = _ENGINES[model] = Engine(model, config)
        return engine


def set_engine(model, config: EngineConfig) -> Engine:
    """Replace the model's engine with one configured as given (benchmarks, tests); the old one must be idle."""
    with _ENGINES_LOCK:
        engine = _ENGINES[model] = Engine(model, config)
        return engine
