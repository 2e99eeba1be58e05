"""Preference controls <-> preference vectors, for any family.

Two shapes of control:

* ``line``: k = 2 on the simplex. One slider ``a`` = weight on the first
  objective, w = (a, 1 - a). Its range is the family's allowed range, so PEO /
  Preference-Vector extrapolation (a < 0 or a > 1) is reachable; the
  in-sample part is shown in the label.
* ``free``: one slider per objective. On the simplex the values are
  normalised to sum 1 (the normalised w is shown); otherwise they are used as
  they are (e.g. Preference Vector's scaling coefficients).

Pure functions only: the app keeps w per session (``ui/session.py``), the CLI and API take it as given.
"""

from __future__ import annotations

from dataclasses import dataclass

from .family import FamilyManifest
from .gates import PreferenceError

MAX_CONTROLS = 6


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 1e4 else f"{v:.3g}"


@dataclass
class Control:
    label: str
    low: float
    high: float
    step: float
    info: str = ""


@dataclass
class PreferenceSpace:
    manifest: FamilyManifest

    @property
    def k(self) -> int:
        return self.manifest.k

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.manifest.objectives]

    @property
    def mode(self) -> str:
        return "line" if self.k == 2 and self.manifest.on_simplex else "free"

    def _range(self, i: int) -> tuple[float, float]:
        m = self.manifest
        if m.w_low is not None:
            return float(m.w_low[i]), float(m.w_high[i])
        if m.in_sample_low is not None:  # any value allowed: offer the trained range widened by half
            lo, hi = float(m.in_sample_low[i]), float(m.in_sample_high[i])
            pad = 0.5 * max(hi - lo, 1e-6)
            return lo - pad, hi + pad
        return 0.0, 1.0

    def controls(self) -> list[Control]:
        m = self.manifest
        if self.mode == "line":
            (lo0, hi0), (lo1, hi1) = self._range(0), self._range(1)
            low, high = max(lo0, 1.0 - hi1), min(hi0, 1.0 - lo1)
            if m.in_sample_low is not None:
                t_lo = max(m.in_sample_low[0], 1 - m.in_sample_high[1])
                t_hi = min(m.in_sample_high[0], 1 - m.in_sample_low[1])
                ins = f"trained on {_fmt(t_lo)}–{_fmt(t_hi)}"
                if low < t_lo - 1e-9 or high > t_hi + 1e-9:
                    ins += "; outside is extrapolation"
            else:
                ins = "any value in range"
            return [Control(f"weight on {self.names[0]}  (w_{self.names[1]} = 1 − this)", low, high,
                            _step(low, high), ins)]
        out = []
        for i, name in enumerate(self.names):
            lo, hi = self._range(i)
            info = ("a relative weight (w above is each divided by their sum)" if m.on_simplex
                    else "used as given (not normalised)")
            out.append(Control(f"w_{name}", lo, hi, _step(lo, hi), info))
        return out

    def default_w(self) -> list[float]:
        """The middle of the trained range (equal weights on the simplex)."""
        if self.mode == "line":
            c = self.controls()[0]
            a = 0.5 if c.low <= 0.5 <= c.high else (c.low + c.high) / 2
            return [a, 1.0 - a]
        m = self.manifest
        if m.on_simplex:
            return [1.0 / self.k] * self.k
        if m.in_sample_low is not None:
            return [(lo + hi) / 2 for lo, hi in zip(m.in_sample_low, m.in_sample_high)]
        return [1.0] * self.k

    def to_w(self, values) -> list[float]:
        """Control values -> a checked preference vector (raises PreferenceError with the fix)."""
        values = [float(v) for v in values]
        if self.mode == "line":
            w = [values[0], 1.0 - values[0]]
        else:
            w = values[: self.k]
            if self.manifest.on_simplex:
                total = sum(w)
                if abs(total) < 1e-12:
                    raise PreferenceError("the weights sum to 0, so they cannot be normalised; raise at least one")
                w = [v / total for v in w]
        self.manifest.check_w(w)
        return [round(v, 10) for v in w]

    def to_controls(self, w) -> list[float]:
        """A preference vector -> control values (the inverse of ``to_w`` up to normalisation)."""
        w = [float(v) for v in w]
        return [w[0]] if self.mode == "line" else w[: self.k]

    def describe(self, w) -> str:
        """One line of Markdown: the weights and whether w is in the trained range."""
        parts = " · ".join(f"**{n}** {_fmt(v)}" for n, v in zip(self.names, w))
        tag = "in the trained range" if self.manifest.is_in_sample(w) else "⚠️ extrapolated (outside the trained range)"
        return f"w = {parts} — {tag}"


def _step(low: float, high: float) -> float:
    span = high - low
    return 0.01 if span <= 3 else 0.05
