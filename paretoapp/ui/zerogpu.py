"""``gpu``: the ZeroGPU decorator on a ZeroGPU Space, a no-op everywhere else.

On ZeroGPU, ``spaces.GPU`` runs a handler in a forked worker that holds the
GPU: nothing the handler changes survives, so handlers that generate are pure
functions of their inputs (w is passed in, never stored on the model).
"""

from __future__ import annotations

try:
    import spaces  # type: ignore

    gpu = spaces.GPU
    STATE = "generation handlers wrapped with spaces.GPU (a no-op off ZeroGPU)"
except ImportError:  # the normal local case
    def gpu(fn=None, **_):
        return fn if fn is not None else (lambda f: f)

    STATE = "no spaces package: no ZeroGPU decorator, handlers run as they are"
# ``serve`` logs STATE once logging is set up (this module is imported before that)
