"""The running batch's key/value cache: rows join between decode steps and leave the moment they finish.

Both layouts keep every row *right-aligned*: row i's real tokens fill the last
len_i columns before the write column (left padding), its next token's
position id is len_i, and its attention mask follows from len_i alone. A new
row is prefilled on its own (``prefill``, with the other rows admitted at the
same step) and its cache is then merged in.

* ``DynamicBatch`` (the CPU default): transformers' ``DynamicCache``. A joining
  row's cache is padded on the left to the batch's width and concatenated;
  when rows leave, the leading columns no remaining row uses are cropped, so a
  step attends only over columns in use.
* ``StaticBatch`` (the GPU default): preallocated slots ``[slots, heads, L,
  dim]`` per layer, static input buffers, and on CUDA one CUDA graph per
  batch-size bucket, replayed every step (eager decoding of a small model is
  launch-bound). The per-row gains sit in the engine's static buffer, updated
  in place: the graph holds the buffer's address, read once through the
  ContextVar at capture. Runs eagerly, the same code without capture, on a CPU
  (where the tests check it).

Interface: ``admit(cache, lengths)``, ``step(tokens, gains) -> logits``,
``keep(rows) -> order`` (the surviving rows' old indices in their new order).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence

import torch
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicCache

from .bank import ActiveGains, use_gains

log = logging.getLogger(__name__)


def prefill(model, rows: Sequence[Sequence[int]], gains: ActiveGains | None,
            device) -> tuple[DynamicCache, list[int], torch.Tensor]:
    """Run the prompts of newly admitted rows (left-padded together): their cache, lengths and next-token logits."""
    lengths = [len(r) for r in rows]
    width = max(lengths)
    ids = torch.tensor([[0] * (width - len(r)) + list(r) for r in rows], device=device)
    mask = (torch.arange(width, device=device)[None, :] >= (width - torch.tensor(lengths, device=device))[:, None])
    mask = mask.long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    with use_gains(gains):
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
    return cache, lengths, out.logits[:, -1].float()


def _layers(cache: Cache) -> list:
    return [layer for layer in cache.layers if layer.is_initialized and layer.keys is not None]


def _pad_left(t: torch.Tensor, n: int) -> torch.Tensor:
    return t if n == 0 else torch.cat([t.new_zeros(*t.shape[:2], n, t.shape[3]), t], dim=2)


def apply_order(t: torch.Tensor, order: Sequence[int]) -> None:
    """Rows ``order[i]`` of ``t`` moved to row i, in place (only the rows that move are copied)."""
    moves = [(new, old) for new, old in enumerate(order) if new != old]
    if moves:
        dst = torch.tensor([m[0] for m in moves], device=t.device)
        src = torch.tensor([m[1] for m in moves], device=t.device)
        t.index_copy_(0, dst, t.index_select(0, src))


class DynamicBatch:
    """Rows in a ``DynamicCache`` that grows and shrinks with them."""

    def __init__(self, model, device):
        self._model, self.device = weakref.ref(model), device  # the engine registry is keyed by the model
        self.cache: DynamicCache | None = None
        self.lengths: list[int] = []

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return self.cache.get_seq_length() if self.cache is not None else 0

    def admit(self, cache: DynamicCache, lengths: Sequence[int]) -> None:
        if not self.lengths:
            self.cache, self.lengths = cache, list(lengths)
            return
        w_old, w_new = self.width, cache.get_seq_length()
        width = max(w_old, w_new)
        for mine, theirs in zip(_layers(self.cache), _layers(cache)):
            mine.keys = torch.cat([_pad_left(mine.keys, width - w_old), _pad_left(theirs.keys, width - w_new)])
            mine.values = torch.cat([_pad_left(mine.values, width - w_old), _pad_left(theirs.values, width - w_new)])
        self.lengths += list(lengths)

    def step(self, tokens: Sequence[int], gains: ActiveGains | None) -> torch.Tensor:
        width = self.width + 1
        lengths = torch.tensor(self.lengths, device=self.device)
        mask = (torch.arange(width, device=self.device)[None, :] >= (width - 1 - lengths)[:, None]).long()
        ids = torch.tensor(tokens, device=self.device)[:, None]
        with use_gains(gains):
            out = self._model()(input_ids=ids, attention_mask=mask, position_ids=lengths[:, None],
                             past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.lengths = [n + 1 for n in self.lengths]
        return out.logits[:, -1].float()

    def keep(self, rows: Sequence[int]) -> list[int]:
        order = sorted(rows)
        if not order:
            self.cache, self.lengths = None, []
            return order
        if order == list(range(len(self.lengths))):
            return order
        self.lengths = [self.lengths[i] for i in order]
        lead = self.width - max(self.lengths)  # columns no remaining row uses
        sel = torch.tensor(order, device=self.device)
        for layer in _layers(self.cache):
            layer.keys = layer.keys.index_select(0, sel)[:, :, lead:]
            layer.values = layer.values.index_select(0, sel)[:, :, lead:]
        return order


class SlotLayer(CacheLayerMixin):
    """One layer's slots, written at the batch's current column (``column``, a one-element device tensor)."""

    is_compileable = True

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, column: torch.Tensor):
        super().__init__()
        self.keys, self.values, self.column = keys, values, column
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # allocated up front
        pass

    def update(self, key_states, value_states, *args, **kwargs):
        self.keys.index_copy_(2, self.column, key_states)
        self.values.index_copy_(2, self.column, value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[2], 0

    def get_seq_length(self) -> int:
        return self.keys.shape[2]

    def get_max_length(self) -> int:
        return self.keys.shape[2]


def buckets(limit: int, first: int = 1) -> list[int]:
    """Sizes a graph is captured for: powers of two from ``first``, and ``limit`` itself."""
    out, b = [], first
    while b < limit:
        out.append(b)
        b *= 2
    return out + [limit]


def bucket(n: int, limit: int, first: int = 1) -> int:
    return next(x for x in buckets(limit, first) if x >= n)


class StaticBatch:
    """Rows in preallocated slots; each step replays a CUDA graph on CUDA, runs eagerly elsewhere.

    A graph is captured per (rows, columns) bucket: the first b slots and the
    first c columns, b and c powers of two, so a step reads no more of the
    cache than twice what its rows use. ``gains(b)`` gives the ActiveGains over
    the engine's static gain buffer for the first b rows (or None with no
    bank); rows past the live ones have zero gain and a mask that sees only
    their own (ignored) column.
    """

    MIN_COLUMNS = 64

    def __init__(self, model, device, slots: int, length: int, gains: Callable[[int], ActiveGains | None],
                 graphs: bool):
        attn = getattr(model.config, "_attn_implementation", None) or "eager"
        if attn not in ("sdpa", "eager"):
            raise ValueError(f"the static decoder supports sdpa or eager attention, not {attn!r}")
        self._model, self.device, self.slots, self.length = weakref.ref(model), torch.device(device), slots, length
        self.gains, self.graphs = gains, graphs and self.device.type == "cuda"
        self.bool_mask = attn == "sdpa"
        self.lengths: list[int] = []
        self.t = 0  # the column the next step writes
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.ids = torch.zeros(slots, 1, dtype=torch.long, device=self.device)
        self.pos = torch.zeros(slots, 1, dtype=torch.long, device=self.device)
        self.column = torch.zeros(1, dtype=torch.long, device=self.device)
        self.mask: torch.Tensor | None = None
        self._caches: dict[tuple[int, int], Cache] = {}
        self._graphs: dict[tuple[int, int], tuple] = {}
        self._pool = None
        self._cols = torch.arange(length, device=self.device)

    def __len__(self) -> int:
        return len(self.lengths)

    def invalidate(self) -> None:
        """Forget the captured graphs (the model's banks changed)."""
        self._graphs.clear()

    def _columns(self, used: int) -> int:
        return bucket(used, self.length, min(self.MIN_COLUMNS, self.length))

    MEMORY_SHARE = 0.25  # at most this share of the GPU's free memory for the slots

    def allocate(self, cache: DynamicCache) -> None:
        """Slots shaped like ``cache``'s layers; on CUDA fewer slots if they would not fit the memory share."""
        layers = _layers(cache)
        per_slot = sum(t.shape[1] * self.length * t.shape[3] * t.element_size()
                       for layer in layers for t in (layer.keys, layer.values))
        if self.device.type == "cuda":
            fit = int(self.MEMORY_SHARE * torch.cuda.mem_get_info(self.device)[0] // per_slot)
            if fit < self.slots:
                log.warning("static KV cache: %d slots of %d tokens would not fit; using %d", self.slots,
                            self.length, max(1, fit))
                self.slots = max(1, fit)
        for layer in layers:
            k, v = layer.keys, layer.values
            self.k.append(k.new_zeros(self.slots, k.shape[1], self.length, k.shape[3]))
            self.v.append(v.new_zeros(self.slots, v.shape[1], self.length, v.shape[3]))
        dtype = torch.bool if self.bool_mask else self.k[0].dtype
        self.mask = torch.zeros(self.slots, 1, 1, self.length, dtype=dtype, device=self.device)

    def _shift(self, d: int) -> None:
        """Move the occupied columns of the live rows by d (right if d > 0); the write column follows."""
        n = len(self.lengths)
        if n and d:
            lo = self.t - max(self.lengths)
            src, dst = slice(lo, self.t), slice(lo + d, self.t + d)
            for t in self.k + self.v:
                t[:n, :, dst] = t[:n, :, src].clone()
        self.t += d

    def admit(self, cache: DynamicCache, lengths: Sequence[int]) -> None:
        if not self.k:
            self.allocate(cache)
        width, n, m = cache.get_seq_length(), len(self.lengths), len(lengths)
        if n + m > self.slots or width >= self.length:
            raise RuntimeError(f"{n + m} rows or {width} tokens do not fit {self.slots} slots of {self.length}")
        if self.t < width:
            self._shift(width - self.t)
        for layer, k, v in zip(_layers(cache), self.k, self.v):
            k[n:n + m, :, self.t - width:self.t] = layer.keys
            v[n:n + m, :, self.t - width:self.t] = layer.values
        self.lengths += list(lengths)

    def _cache(self, b: int, c: int) -> Cache:
        if (b, c) not in self._caches:
            self._caches[b, c] = Cache(layers=[SlotLayer(k[:b, :, :c], v[:b, :, :c], self.column)
                                               for k, v in zip(self.k, self.v)])
        return self._caches[b, c]

    def _forward(self, b: int, c: int) -> torch.Tensor:
        out = self._model()(input_ids=self.ids[:b], position_ids=self.pos[:b], attention_mask=self.mask[:b, :, :, :c],
                         past_key_values=self._cache(b, c), use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float()

    def _capture(self, b: int, c: int) -> None:
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream), use_gains(self.gains(b)):
            for _ in range(2):  # warm-up: lazy initialisations happen outside the capture
                self._forward(b, c)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads (a scorer, another model's engine) may use the GPU meanwhile
        with use_gains(self.gains(b)), torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            logits = self._forward(b, c)
        self._pool = self._pool or graph.pool()
        self._graphs[b, c] = (graph, logits)

    def step(self, tokens: Sequence[int], gains: ActiveGains | None = None) -> torch.Tensor:
        """One decode step; ``gains`` is ignored: rows read the static buffer (see the class docstring)."""
        n = len(self.lengths)
        b, longest = bucket(n, self.slots), max(self.lengths)
        if self.t >= self.length or self._columns(self.t + 1) > self._columns(longest + 1):
            self._shift(longest - self.t)  # compact: drop the columns no live row uses
        c = self._columns(self.t + 1)
        pad = [0] * (b - n)
        self.ids[:b, 0].copy_(torch.tensor(list(tokens) + pad))
        lengths = torch.tensor(self.lengths + pad, device=self.device)
        self.pos[:b, 0].copy_(lengths)
        cols = self._cols[None, :c]
        valid = (cols >= (self.t - lengths)[:, None]) & (cols <= self.t)
        if self.bool_mask:
            self.mask[:b, 0, 0, :c].copy_(valid)
        else:
            self.mask[:b, 0, 0, :c].copy_(torch.zeros(valid.shape, dtype=self.mask.dtype, device=self.device)
                                          .masked_fill_(~valid, torch.finfo(self.mask.dtype).min))
        self.column.fill_(self.t)
        if self.graphs:
            if (b, c) not in self._graphs:
                self._capture(b, c)
            graph, logits = self._graphs[b, c]
            graph.replay()
        else:
            with use_gains(self.gains(b)):
                logits = self._forward(b, c)
        self.t += 1
        self.lengths = [x + 1 for x in self.lengths]
        return logits[:n]

    def keep(self, rows: Sequence[int]) -> list[int]:
        """Survivors stay in their slots, except that the last ones fill the holes (fewer rows to copy)."""
        alive = sorted(rows)
        n = len(alive)
        staying = set(i for i in alive if i < n)
        tail = [i for i in alive if i >= n]
        order = [i if i in staying else tail.pop(0) for i in range(n)]
        for t in self.k + self.v:
            apply_order(t, order)
        self.lengths = [self.lengths[i] for i in order]
        return order
