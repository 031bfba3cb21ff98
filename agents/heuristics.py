"""The classic ballooning heuristics, each from what a real host can observe.

Every policy here is a :class:`~agents.base.BalloonTargetPolicy`: it sets a balloon
target (pages) per VM every ``period`` ticks (its published period in seconds mapped to
ticks with ``params.tick_ms``) from the observation and the host-visible gauges it lists
in ``info_keys`` / ``host_info_keys``. Each docstring states the rule, its constants and
their source; where the source leaves a constant open, the docstring says so and gives
our choice.

Units. "Guest memory" of VM ``i`` is ``M_i − balloon_i`` pages (``M_i`` = configured
guest pages): what the guest believes it has, MOM's ``balloon_cur`` and Xen's
``totalram_pages``. Host free memory is ``host_free_frames / host_frames``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.base import BalloonTargetPolicy, ObservationView

# --------------------------------------------------------------------------- ESX
ESX_IDLE_TAX = 0.75  # τ: an idle page costs 1/(1−τ) = 4 active pages (Waldspurger 2002, §5.2)
ESX_CTL_MAX = 0.65  # Mem.CtlMaxPercent: at most 65 % of a VM ballooned
ESX_STATE_MODELS = ("vsphere6", "osdi2002")
# vSphere 6 free-memory states, each entered when free memory falls below this fraction of
# minFree: high 400 %, clear 100 %, soft 64 %, hard 32 %, low 16 % (D. Epping, "What
# happens at which vSphere memory state?", yellow-bricks.com, 2015; docs/design/
# physics-v1.md §9a, verified). High = 400 % is Epping's; one secondary post says 300 %.
ESX6_FRACTIONS = (4.00, 1.00, 0.64, 0.32, 0.16)  # high, clear, soft, hard, low
ESX6_SOFT = 3  # state index of soft: 0 above high, 1 high, 2 clear, 3 soft, 4 hard, 5 low
# OSDI 2002 (v0 headline results): high / soft / hard / low at 6 / 4 / 2 / 1 % of host
# memory (Waldspurger 2002, §6.2, as cited in docs/model.md; not re-read, physics-v1 §9a).
ESX_THRESHOLDS = (0.06, 0.04, 0.02, 0.01)  # high, soft, hard, low free memory (§6.2)
# Open in the paper (ours, tuned on train scenarios only): EWMA gains per sampling period,
# the hysteresis margin above a threshold before returning to a higher state, and how much
# faster reclamation proceeds in the hard and low states.
ESX_FAST_GAIN = 0.5
ESX_SLOW_GAIN = 0.25
ESX_HYSTERESIS = 0.01  # of host memory (osdi2002 states only)
ESX_STATE_GAIN = (0.0, 1.0, 2.0, 3.0)  # reclaim factor in high, soft, hard, low (osdi2002)


def esx_min_free_mb(host_mb: float) -> float:
    """ESX's ``minFree`` (MB) for a host of ``host_mb`` MB of memory: the sliding scale of
    ``Mem.MinFreePct``, 6 % of the first 4 GB, 4 % of 4–12 GB, 2 % of 12–28 GB and 1 % of
    the rest (F. Denneman, "Mem.MinFreePct sliding scale function", 2011; vSphere 5 and
    6). The first 28 GB give 901.12 MB, which vSphere 6 write-ups print as "899 MB"
    (physics-v1.md §9a, §11.6). For a 96 GB host: 1597.44 MB (Denneman's example)."""
    gb = 1024.0
    m = float(host_mb)
    if not (math.isfinite(m) and m >= 0.0):
        raise ValueError(f"host_mb must be a finite number >= 0, got {host_mb}")
    parts = (
        (0.06, min(m, 4 * gb)),
        (0.04, min(max(m - 4 * gb, 0.0), 8 * gb)),
        (0.02, min(max(m - 12 * gb, 0.0), 16 * gb)),
        (0.01, max(m - 28 * gb, 0.0)),
    )
    return sum(f * x for f, x in parts)


def default_min_free_pages(host_min_free: int, host_frames: int) -> int:
    """``minFree`` (pages) of a simulated host for the vSphere 6 states: the host swaps by
    itself below ``host_min_free``, and ESX swaps below its hard threshold (32 % of
    minFree), so ``minFree = host_min_free / 0.32``, rounded, in ``[1, host_frames]``."""
    return int(min(max(1, round(host_min_free / ESX6_FRACTIONS[3])), host_frames))


def _waterfill(
    shares: np.ndarray,
    active: np.ndarray,
    k: float,
    lo: np.ndarray,
    hi: np.ndarray,
    total: np.ndarray,
    iters: int = 60,
) -> np.ndarray:
    """Allocations ``P`` (B, V) with ``Σ_v P = total`` (B,) that equalize the adjusted
    shares-per-page ratio ``ρ_v = S_v / (A_v + k·(P_v − A_v)⁺ + min(P_v, A_v) − A_v⁺)``,
    i.e. min-funding revocation with an idle memory tax (Waldspurger 2002, §5.2): pages
    up to the active estimate ``A_v`` cost 1, idle pages above it cost ``k``. Each ``P_v``
    is clipped to ``[lo_v, hi_v]``; bisection on the common cost level ``y = 1/ρ``."""
    S = shares[None, :]

    def alloc(y: np.ndarray) -> np.ndarray:
        c = S * y[:, None]  # cost each VM may spend at ratio 1/y
        p = np.where(c <= active, c, active + (c - active) / k)
        return np.clip(p, lo, hi)

    tot = np.clip(total, lo.sum(axis=-1), hi.sum(axis=-1))
    y_lo = np.zeros(tot.shape[0])
    y_hi = np.full(tot.shape[0], float(np.max((active + k * hi) / S)) + 1.0)
    for _ in range(iters):
        mid = 0.5 * (y_lo + y_hi)
        over = alloc(mid).sum(axis=1) > tot
        y_hi = np.where(over, mid, y_hi)
        y_lo = np.where(over, y_lo, mid)
    return alloc(y_lo)


class EsxPolicy(BalloonTargetPolicy):
    """VMware ESX: share-based allocation with an idle memory tax, driven by the
    free-memory state (Waldspurger, "Memory Resource Management in VMware ESX Server",
    OSDI 2002, §5-§6), with the free-memory states of vSphere 6 (default) or of the 2002
    paper (``states="osdi2002"``, the v0 headline results).

    Rule, every tick:

    1. **Working set** (§5.3). ESX samples ``n`` random pages per 30 s period and takes
       the fraction touched. The env's ``ws_estimate`` is exactly that sample: the
       fraction of the period's ``ws_sample_pages`` random GPPs touched since the period
       began (``ws_sample_period_ticks``, 30 ticks of 1 s). At each period's end we
       update a slow and a fast EWMA with it; the estimate is the max of the slow, the
       fast, and the fast one updated with the current, incomplete period (§5.3:
       "responds rapidly to increases ... and more gradually to decreases"). Active
       pages ``A_i = f_i · M_i``.
    2. **Free-memory state**, from the host's free frames at the end of the last tick.

       - ``"vsphere6"``: each state is entered when free memory falls below a fixed
         fraction of ``minFree``: high 400 %, clear 100 %, soft 64 %, hard 32 %, low 16 %
         (Epping, "What happens at which vSphere memory state?", 2015). ESX computes
         ``minFree`` from the host's real memory by a sliding scale (:func:`esx_min_free_mb`:
         about 899 MB for the first 28 GB plus 1 % of the rest). That scale is for real
         host sizes; a simulated host is scaled down (a few thousand frames), and its own
         reclaim threshold is ``HostParams.host_min_free``: below it the host swaps by
         itself, at the end of every tick, back up to ``host_min_free``. ESX starts
         swapping in the hard state, so the host's swap threshold is ESX's hard boundary:
         ``minFree = host_min_free / 0.32`` (``min_free_pages`` overrides it). Taking
         ``minFree = host_min_free`` instead would put the host's swapping at ESX's clear
         boundary: the free memory seen after a tick would never fall below clear and the
         policy would never balloon (on default-v0 it is then exactly no-balloon). The
         transitions of ESX have hysteresis whose width is not published: none here.
       - ``"osdi2002"``: high / soft / hard / low at 6 / 4 / 2 / 1 % of host memory. A
         state drops when free memory falls below the next threshold; it rises only once
         free memory exceeds the higher threshold by a 1 % hysteresis margin.
    3. **What each state does.**

       - ``"vsphere6"`` (Epping 2015): above soft (high, clear) ESX breaks large pages and
         calls TPS: the simulator has no large pages and KSM always runs, so there is no
         reclamation and the balloons may only deflate. In **soft** (TPS + balloon) the
         balloons inflate toward targets that bring free memory back to ``minFree`` (the
         clear threshold). In **hard** (TPS + compress + swap) "the balloon driver stops":
         the balloon targets are held; the host swaps, which the simulated host does by
         itself below ``host_min_free``. **Low** adds blocking of VM allocations, which a
         balloon policy cannot do: as hard (the simulated host reclaims on its own).
       - ``"osdi2002"``: in every state the targets drive free memory to the high
         threshold (6 %), less (g − 1) times the shortfall below 6 % with g = 1, 2, 3 in
         the soft, hard, low states; the balloons inflate toward them in soft, hard and
         low, and may only deflate in high.
    4. **Target allocations** (§5.2): the machine pages the VMs may hold together are
       ``Σ_i P_i + free − want`` (``P_i`` = the VM's host-resident plus shared GPPs;
       ``want`` = the free memory the state aims at). They are split by min-funding
       revocation with the idle memory tax: shares ``S_i ∝ M_i`` (ESX's default shares
       are per MB of configured memory), ``ρ_i = S_i / (P_i · (f_i + k·(1 − f_i)))``, ``k
       = 1/(1 − τ)``, ``τ = 0.75``; the VM with the lowest ``ρ`` gives pages first (we
       equalize ``ρ`` by water-filling). Every VM keeps at least 35 % of its memory
       (``Mem.CtlMaxPercent`` = 65 %).
    5. **Balloon vs swap** (§6.2): the balloon target is ``M_i − P'_i − host_swapped_i``
       (the guest keeps its target machine pages plus what the host already swapped
       out).

    Constants (source): τ = 0.75, 30 s sampling (Waldspurger 2002); vSphere 6 states
    (Epping 2015) or 6/4/2/1 % states (Waldspurger 2002); 65 % balloon cap (ESX
    ``Mem.CtlMaxPercent``). Open in the paper, ours: EWMA gains 0.5 (fast) and 0.25
    (slow; tuned on the train scenario idle-tax-v0) per period; for ``osdi2002`` a 1 %
    hysteresis margin and reclaim factors 1/2/3. Observation: ``ws_estimate``,
    ``host_free_frac``; info (host side): ``host_resident_pages``, ``host_shared_pages``,
    ``host_swapped_pages``, ``balloon_pages``, ``host_free_frames``.

    Args:
        env: the env to drive.
        idle_tax: τ in [0, 1).
        states: ``"vsphere6"`` (default) or ``"osdi2002"``.
        min_free_pages: ``minFree`` in pages for the ``vsphere6`` states (None:
            ``host_min_free / 0.32``, at least 1, at most ``host_frames``).
        fractions: the vSphere 6 thresholds (high, clear, soft, hard, low) as fractions
            of ``minFree``, strictly decreasing and > 0 (default ``ESX6_FRACTIONS``).
        ctl_max: the most of a VM's memory that may be ballooned, in (0, 1]
            (``Mem.CtlMaxPercent``, default ``ESX_CTL_MAX``).
        fast_gain, slow_gain: the EWMA gains per sampling period, in (0, 1]
            (defaults ``ESX_FAST_GAIN``, ``ESX_SLOW_GAIN``).

    The keyword constants are what ``reclaim tune --policy esx`` searches
    (:mod:`agents.tuned`); their defaults are the module constants above.
    """

    name = "esx"
    period_s = 1.0
    info_keys = ("host_resident_pages", "host_shared_pages", "host_swapped_pages")
    host_info_keys = ("host_free_frames",)

    def __init__(
        self,
        env: Any,
        idle_tax: float = ESX_IDLE_TAX,
        states: str = "vsphere6",
        min_free_pages: int | None = None,
        *,
        fractions: tuple[float, ...] = ESX6_FRACTIONS,
        ctl_max: float = ESX_CTL_MAX,
        fast_gain: float = ESX_FAST_GAIN,
        slow_gain: float = ESX_SLOW_GAIN,
    ) -> None:
        super().__init__(env)
        fractions = tuple(float(f) for f in fractions)
        if len(fractions) != len(ESX6_FRACTIONS) or not (
            all(a > b for a, b in zip(fractions, fractions[1:], strict=False)) and fractions[-1] > 0
        ):
            raise ValueError(
                f"fractions must be {len(ESX6_FRACTIONS)} numbers, strictly decreasing "
                f"and > 0, got {fractions}"
            )
        for key, value in (("ctl_max", ctl_max), ("fast_gain", fast_gain),
                           ("slow_gain", slow_gain)):  # fmt: skip
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{key} must be in (0, 1], got {value}")
        self.fractions = fractions
        self.fast_gain, self.slow_gain = float(fast_gain), float(slow_gain)
        if not 0.0 <= idle_tax < 1.0:
            raise ValueError(f"idle_tax must be in [0, 1), got {idle_tax}")
        if states not in ESX_STATE_MODELS:
            raise ValueError(f"states must be one of {ESX_STATE_MODELS}, got {states!r}")
        if min_free_pages is None:
            min_free_pages = default_min_free_pages(self.params.host_min_free, self.H)
        if isinstance(min_free_pages, bool) or not isinstance(min_free_pages, int):
            raise ValueError(f"min_free_pages must be an int or None, got {min_free_pages!r}")
        if not 1 <= min_free_pages <= self.H:
            raise ValueError(
                f"min_free_pages must be in [1, host_frames={self.H}] (None: host_min_free / "
                f"{ESX6_FRACTIONS[3]}), "
                f"got {min_free_pages}"
            )
        self.states = states
        self.min_free_pages = int(min_free_pages)
        self.idle_tax = float(idle_tax)
        self.k = 1.0 / (1.0 - self.idle_tax)
        self.sample_period = self.params.ws_sample_period_ticks  # ESX's 30 s
        cap = np.minimum(self.maxb, np.floor(ctl_max * self.M)).astype(np.int64)
        self.lo = (self.M - cap).astype(np.float64)  # (V,) smallest guest memory
        self.hi = self.M.astype(np.float64)
        B, V = self.num_envs, self.num_vms
        self.fast = np.zeros((B, V))
        self.slow = np.zeros((B, V))
        self.have_avg = np.zeros(B, dtype=bool)
        # osdi2002: 0 high, 1 soft, 2 hard, 3 low; vsphere6: see esx6_state.
        self.state = np.zeros(B, dtype=np.int64)
        self.f = np.zeros((B, V))

    @property
    def thresholds_pages(self) -> tuple[float, ...]:
        """The vSphere 6 thresholds (high, clear, soft, hard, low) in pages."""
        return tuple(f * self.min_free_pages for f in self.fractions)

    def esx6_state(self, free_frames: np.ndarray) -> np.ndarray:
        """vSphere 6 state of each env from its free frames: the number of thresholds
        free memory is below, 0 (above high) .. 5 (low); 3 is soft."""
        free = np.asarray(free_frames, dtype=np.float64)
        return sum((free < t).astype(np.int64) for t in self.thresholds_pages)

    def reset_envs(self, mask: np.ndarray) -> None:
        self.fast[mask] = 0.0
        self.slow[mask] = 0.0
        self.have_avg[mask] = False
        self.state[mask] = 0

    def active_fraction(self, obs: ObservationView) -> np.ndarray:
        """Update the sampled working-set averages; return the (B, V) estimate f."""
        # The env's sample is ESX's: the fraction of this period's sampled pages touched
        # since the period began, so at the period's last tick it is the period's value.
        # The average takes a period's sample at the first observation at or after the
        # tick before the period ends (ticks n·per − 1; with one tick per step, the 30th
        # observation of each period, as ESX has always been modelled here: v0 and v1
        # results keep their meaning). The clock counts ticks, so on a k-tick env the
        # period stays 30 s (its sample is then read at the period's end or just after).
        cur = obs.feature("ws_estimate").astype(np.float64)
        t1, k, per = self.tick + 1, self.ticks_per_step, self.sample_period
        done = t1 // per > np.maximum(t1 - k, 0) // per  # not at an episode start
        if done.any():
            first = done & ~self.have_avg
            self.fast[first] = cur[first]
            self.slow[first] = cur[first]
            upd = done & self.have_avg
            self.fast[upd] += self.fast_gain * (cur[upd] - self.fast[upd])
            self.slow[upd] += self.slow_gain * (cur[upd] - self.slow[upd])
            self.have_avg |= done
        partial = self.fast + self.fast_gain * (cur - self.fast)
        est = np.maximum(np.maximum(self.slow, self.fast), partial)
        # Before the first full period only the current samples exist.
        return np.where(self.have_avg[:, None], est, cur)

    def update_state(self, free: np.ndarray) -> None:
        """osdi2002 states from the host free fraction (B,), with hysteresis."""
        high, soft, hard, low = ESX_THRESHOLDS
        s = self.state
        s = np.where((s < 1) & (free < soft), 1, s)
        s = np.where((s < 2) & (free < hard), 2, s)
        s = np.where((s < 3) & (free < low), 3, s)
        s = np.where((s == 3) & (free >= hard + ESX_HYSTERESIS), 2, s)
        s = np.where((s == 2) & (free >= soft + ESX_HYSTERESIS), 1, s)
        s = np.where((s == 1) & (free >= high + ESX_HYSTERESIS), 0, s)
        self.state = s

    def observe(self, obs: ObservationView) -> None:
        self.f = self.active_fraction(obs)

    def _targets_for(self, obs: ObservationView, free: np.ndarray, total: np.ndarray) -> np.ndarray:
        P = _waterfill(self.M.astype(np.float64), self.f * self.M, self.k, self.lo, self.hi, total)
        # The guest keeps P machine pages plus what the host has swapped out of it; the
        # balloon takes the rest (free GPPs first, backed or not).
        return self.M[None, :] - P - obs.gauge("host_swapped_pages")

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        free = obs.host_gauge("host_free_frames").astype(np.float64)
        # Machine pages each VM holds now (private frames + GPPs on shared frames).
        alloc = (obs.gauge("host_resident_pages") + obs.gauge("host_shared_pages")).astype(
            np.float64
        )
        if self.states == "vsphere6":
            self.state = self.esx6_state(free)
            want = self.fractions[1] * self.min_free_pages  # back to clear: minFree
            total = alloc.sum(axis=1) + free - want
            target = self._targets_for(obs, free, total)
            soft = (self.state == ESX6_SOFT)[:, None]
            held = (self.state > ESX6_SOFT)[:, None]  # hard, low: the balloon stops
            return np.where(
                soft, target, np.where(held, self._targets, np.minimum(target, self._targets))
            )
        free_frac = obs.host_feature("host_free_frac")
        self.update_state(free_frac)
        H = float(self.H)
        want = ESX_THRESHOLDS[0] * H
        gain = np.asarray(ESX_STATE_GAIN)[self.state]
        short = np.maximum(want - free, 0.0)
        total = alloc.sum(axis=1) + free - want - np.maximum(gain - 1.0, 0.0) * short
        target = self._targets_for(obs, free, total)
        # High state: no reclamation, the balloons may only deflate.
        return np.where(self.state[:, None] > 0, target, np.minimum(target, self._targets))


EsxIdleTaxPolicy = EsxPolicy


# --------------------------------------------------------------------------- MOM
MOM_PRESSURE = 0.20  # host free fraction below which the host is under pressure
MOM_CRITICAL = 0.05  # ... and below which the pressure is critical
MOM_MIN_GUEST_FREE = 0.20  # free memory an unconstrained guest would like to keep
MOM_MAX_CHANGE = 0.05  # most a guest's memory changes per policy run
MOM_MIN_CHANGE = 0.0025  # smaller changes are not worth a balloon operation
MOM_PERIOD_S = 15.0


class MomPolicy(BalloonTargetPolicy):
    """oVirt MOM's vdsm balloon policy (``02-balloon.policy`` / ``balloon.rules``).

    Rule, every 15 s, with ``cur`` = guest memory (``M − balloon``), ``max`` = ``M``,
    ``used = cur − unused`` (``unused``: guest free pages, virtio-balloon ``mem_unused``)
    and ``h`` = host free fraction, both averaged over the samples since the last run
    (MOM's ``StatAvg``):

    - ``h < 0.20`` (pressure): **shrink** every guest. Guest free goal ``g = 0.20 · h /
      0.20`` (scaled back with host pressure), or ``g = h − 0.05`` when ``h ≤ 0.05``
      (critical: negative, forcing the guest to swap). New size ``max(cur · 0.95,
      used + g · cur)``, applied if it is ``≤ cur``.
    - otherwise **grow** every ballooned guest: ``min(cur · 1.05, max)``, raised to
      ``used + 0.20 · max`` if that is larger.
    - a change smaller than 0.25 % of ``cur`` is skipped. Balloon target ``M − size``.

    Constants (source: oVirt MOM ``doc/balloon.rules`` / vdsm ``02-balloon.policy``):
    pressure 0.20, critical 0.05, min guest free 0.20, max change 0.05, min change
    0.0025; policy interval 15 s (vdsm's MOM configuration). Observation:
    ``host_free_frac``, ``guest_free_frac``; info: ``balloon_pages``.

    Keyword constants (searched by ``reclaim tune --policy mom``, :mod:`agents.tuned`;
    defaults the module constants): ``pressure`` > ``critical`` >= 0, ``min_guest_free``
    in [0, 1], ``max_change`` in (0, 1), ``min_change`` in [0, max_change).
    """

    name = "mom"
    period_s = MOM_PERIOD_S

    def __init__(
        self,
        env: Any,
        *,
        pressure: float = MOM_PRESSURE,
        critical: float = MOM_CRITICAL,
        min_guest_free: float = MOM_MIN_GUEST_FREE,
        max_change: float = MOM_MAX_CHANGE,
        min_change: float = MOM_MIN_CHANGE,
    ) -> None:
        super().__init__(env)
        if not 0.0 <= critical < pressure <= 1.0:
            raise ValueError(
                f"need 0 <= critical < pressure <= 1, got critical={critical}, pressure={pressure}"
            )
        if not 0.0 <= min_guest_free <= 1.0:
            raise ValueError(f"min_guest_free must be in [0, 1], got {min_guest_free}")
        if not 0.0 < max_change < 1.0 or not 0.0 <= min_change < max_change:
            raise ValueError(
                f"need 0 <= min_change < max_change < 1, got min_change={min_change}, "
                f"max_change={max_change}"
            )
        self.pressure, self.critical = float(pressure), float(critical)
        self.min_guest_free = float(min_guest_free)
        self.max_change, self.min_change = float(max_change), float(min_change)
        B, V = self.num_envs, self.num_vms
        self.sum_host = np.zeros(B)
        self.sum_unused = np.zeros((B, V))
        self.n = np.zeros(B, dtype=np.int64)

    def reset_envs(self, mask: np.ndarray) -> None:
        self.sum_host[mask] = 0.0
        self.sum_unused[mask] = 0.0
        self.n[mask] = 0

    def observe(self, obs: ObservationView) -> None:
        # StatAvg: average the samples since the last run (this one included).
        self.sum_host += obs.host_feature("host_free_frac")
        self.sum_unused += obs.feature("guest_free_frac") * self.M
        self.n += 1

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        n = np.maximum(self.n, 1)
        h = (self.sum_host / n)[:, None]
        unused = self.sum_unused / n[:, None]
        cur = obs.guest_mem.astype(np.float64)
        mx = self.M[None, :].astype(np.float64)
        used = cur - unused
        # shrink_guest
        gfree = np.where(h <= self.critical, h - 0.05, self.min_guest_free * h / self.pressure)
        shrink = np.maximum(cur * (1.0 - self.max_change), used + gfree * cur)
        shrink = np.where(shrink <= cur, shrink, cur)
        # grow_guest
        grow = np.minimum(cur * (1.0 + self.max_change), mx)
        grow = np.maximum(grow, used + self.min_guest_free * mx)
        grow = np.where(cur < mx, grow, cur)
        size = np.where(h < self.pressure, shrink, grow)
        big = np.abs(size - cur) > self.min_change * cur
        size = np.where(big, size, cur)
        self.sum_host[due] = 0.0
        self.sum_unused[due] = 0.0
        self.n[due] = 0
        return self.M[None, :] - np.minimum(size, mx)


# --------------------------------------------------------------------------- Xen
XEN_RESERVE = 0.10  # reserve added to Committed_AS, as a fraction of configured memory
XEN_DOWN_HYSTERESIS = 8  # give back 1/8 of the excess per run
XEN_UP_HYSTERESIS = 1  # take the whole shortfall per run
XEN_INTERVAL_S = 5.0


class SelfBalloonPolicy(BalloonTargetPolicy):
    """Xen self-ballooning (Linux ``drivers/xen/xen-selfballoon.c``).

    Rule, every 5 s, with ``cur`` = guest memory (``M − balloon``): ``goal = K +
    Committed_AS + 0.10 · M`` (kernel pages stand for ``totalreserve_pages``; the 10 %
    reserve is ``selfballoon_reserved_mb``); if ``cur > goal``: ``cur − (cur − goal) //
    8``; if ``cur < goal``: ``cur + (goal − cur) // 1``. Balloon target ``M − that``.
    The kernel's MB-based floor (``selfballoon_min_usable_mb``'s piecewise function) has
    no meaning at our page scale; the env's own limit (kernel + guest reserve) is the
    floor.

    Constants (source: ``xen-selfballoon.c``): down-hysteresis 8, up-hysteresis 1,
    interval 5 s; reserve 10 % (docs/model.md §10). Reads ``info["vm"]["guest_committed_pages"]``
    (the guest's committed pages, host-visible through the guest agent; it counts the
    workload's resident and swapped pages, page cache included, where Linux's
    ``Committed_AS`` counts private mappings only) and ``balloon_pages``. Self-ballooning
    runs inside each guest: it never looks at host memory.

    Keyword constants (searched by ``reclaim tune --policy selfballoon``,
    :mod:`agents.tuned`; defaults the module constants): ``reserve`` in [0, 1],
    ``down_hysteresis`` and ``up_hysteresis`` ints >= 1 (the kernel's sysfs
    ``selfballoon_downhysteresis`` / ``selfballoon_uphysteresis``).
    """

    name = "selfballoon"
    period_s = XEN_INTERVAL_S
    info_keys = ("guest_committed_pages",)

    def __init__(
        self,
        env: Any,
        *,
        reserve: float = XEN_RESERVE,
        down_hysteresis: int = XEN_DOWN_HYSTERESIS,
        up_hysteresis: int = XEN_UP_HYSTERESIS,
    ) -> None:
        super().__init__(env)
        if not 0.0 <= reserve <= 1.0:
            raise ValueError(f"reserve must be in [0, 1], got {reserve}")
        for key, value in (("down_hysteresis", down_hysteresis),
                           ("up_hysteresis", up_hysteresis)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an int >= 1, got {value!r}")
        self.reserve = float(reserve)
        self.down_hysteresis, self.up_hysteresis = int(down_hysteresis), int(up_hysteresis)

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        cur = obs.guest_mem
        committed = obs.gauge("guest_committed_pages")
        goal = self.K[None, :] + committed + np.floor(self.reserve * self.M).astype(np.int64)
        tgt = np.where(
            cur > goal,
            cur - (cur - goal) // self.down_hysteresis,
            cur + (goal - cur) // self.up_hysteresis,
        )
        return self.M[None, :] - np.minimum(tgt, self.M[None, :])


# --------------------------------------------------------------------------- Hyper-V
HYPERV_BUFFER = 0.20  # memory buffer: assign demand × 1.2 (target pressure 100/1.2 ≈ 83)
HYPERV_PERIOD_S = 1.0  # the Dynamic Memory balancer rebalances about every second
HYPERV_HOST_RESERVE = 0.02  # ours: host memory kept back for the root, beyond host_min_free


class HyperVPolicy(BalloonTargetPolicy):
    """Hyper-V Dynamic Memory with a 20 % buffer.

    Rule, every second: demand ``D_i = K_i + committed_i`` (the guest's commit charge,
    reported by its integration services); memory pressure ``100 · D_i / assigned_i``;
    the balancer aims at ``assigned_i = D_i · 1.2`` (pressure 100/1.2 ≈ 83), at most
    ``M_i`` (Maximum RAM) and at least kernel + guest reserve (Minimum RAM). When the
    host cannot satisfy every VM (``Σ`` targets > host memory available to VMs) all VMs
    with equal memory weight get the same pressure: assignments are scaled by a common
    factor. Memory is taken back by the balloon (Hyper-V's hot-add path is the balloon
    deflating here). Balloon target ``M_i − assigned_i``.

    Constants: buffer 20 % (Hyper-V Dynamic Memory docs, default "Memory buffer");
    available memory = ``host_frames − host_min_free − 2 % · host_frames`` (Hyper-V's
    host reserve is sized by the host; 2 % is ours). No dedup (Hyper-V has none). Reads
    ``info["vm"]["guest_committed_pages"]`` and ``balloon_pages``.

    Keyword constants (searched by ``reclaim tune --policy hyperv``, :mod:`agents.tuned`;
    defaults the module constants): ``buffer`` >= 0 (Hyper-V accepts 5 %–2000 %),
    ``host_reserve`` in [0, 1).
    """

    name = "hyperv"
    period_s = HYPERV_PERIOD_S
    info_keys = ("guest_committed_pages",)

    def __init__(
        self, env: Any, *, buffer: float = HYPERV_BUFFER, host_reserve: float = HYPERV_HOST_RESERVE
    ) -> None:
        super().__init__(env)
        if not 0.0 <= buffer <= 20.0:
            raise ValueError(f"buffer must be in [0, 20], got {buffer}")
        if not 0.0 <= host_reserve < 1.0:
            raise ValueError(f"host_reserve must be in [0, 1), got {host_reserve}")
        self.buffer, self.host_reserve = float(buffer), float(host_reserve)

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        demand = (self.K[None, :] + obs.gauge("guest_committed_pages")).astype(np.float64)
        lo = (self.M - self.maxb).astype(np.float64)[None, :]
        want = np.clip(np.ceil(demand * (1.0 + self.buffer)), lo, self.M[None, :])
        avail = self.H - self.params.host_min_free - self.host_reserve * self.H
        scale = np.minimum(1.0, avail / np.maximum(want.sum(axis=1), 1.0))
        assigned = np.maximum(np.floor(want * scale[:, None]), lo)
        return self.M[None, :] - assigned

    @staticmethod
    def pressure(demand: np.ndarray, assigned: np.ndarray) -> np.ndarray:
        """Hyper-V's memory pressure: ``100 · demand / assigned``."""
        return 100.0 * demand / np.maximum(assigned, 1)


# --------------------------------------------------------------------------- MRC
MRC_PERIOD_S = 5.0  # ours
MRC_GAIN = 0.5  # EWMA gain per period for the fault rate and the gauges (ours)
MRC_COLD_SLOPE = 1e-3  # faults/tick per idle resident page, a floor (ours)
MRC_HOST_RESERVE = 0.02  # host memory kept free beyond host_min_free (ours)
MRC_MIN_CHANGE = 0.01  # of M: smaller target changes are skipped (ours)


class MrcPolicy(BalloonTargetPolicy):
    """Miss-ratio-curve greedy allocation, MEB-style (Zhao & Wang, "Dynamic memory
    balancing for virtual machines", VEE 2009), from host-observable signals.

    Each VM's miss curve (guest major faults per tick as a function of its guest memory
    ``m``) is estimated as concave and piecewise linear around the present allocation:

    - ``K_i + A_i`` pages (kernel + sampled active set, ``A_i = ws_estimate · M_i``,
      EWMA) are needed: infinite slope;
    - the resident pages beyond them (``used − A_i``) cost ``ℓ_i = max(g_i, 10⁻³)``
      faults/tick per page if taken away (local slope, floored);
    - the pages the guest has on its swap (``guest_swap_used``, from the guest agent)
      would save ``g_i = faults_i / guest_swap_used_i`` faults/tick per page if given
      back: the observed major-fault rate spread uniformly over the missing pages;
    - beyond that, more memory saves nothing.

    Every 5 s the host memory available to guests (``host_frames − host_min_free − 2 %``
    plus the frames KSM saves) is handed out greedily, steepest slope first; what is
    left after every positive slope is split in proportion to the room left in each
    VM. Balloon target ``M_i − m_i``; changes under 1 % of ``M_i`` are skipped.

    Constants: all ours (period 5 s, EWMA gain 0.5, slope floor 10⁻³, 2 % reserve, 1 %
    minimum change): MEB builds its curves from intercepted page accesses, which a host
    without page tracking cannot see; this is the closest host-visible estimate. Reads
    the observation's ``major_fault_rate``, ``ws_estimate``, ``guest_free_frac``, and
    ``info["vm"]``: ``guest_swap_used``, ``guest_used_pages``, ``balloon_pages``,
    ``info["host"]["sharing_saved_frames"]``.

    Keyword constants (searched by ``reclaim tune --policy mrc``, :mod:`agents.tuned`;
    defaults the module constants): ``gain`` in (0, 1], ``cold_slope`` > 0,
    ``host_reserve`` in [0, 1), ``min_change`` in [0, 1).
    """

    name = "mrc"
    period_s = MRC_PERIOD_S
    info_keys = ("guest_swap_used", "guest_used_pages")
    host_info_keys = ("sharing_saved_frames",)

    def __init__(
        self,
        env: Any,
        *,
        gain: float = MRC_GAIN,
        cold_slope: float = MRC_COLD_SLOPE,
        host_reserve: float = MRC_HOST_RESERVE,
        min_change: float = MRC_MIN_CHANGE,
    ) -> None:
        super().__init__(env)
        if not 0.0 < gain <= 1.0:
            raise ValueError(f"gain must be in (0, 1], got {gain}")
        if not cold_slope > 0.0:
            raise ValueError(f"cold_slope must be > 0, got {cold_slope}")
        for key, value in (("host_reserve", host_reserve), ("min_change", min_change)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{key} must be in [0, 1), got {value}")
        self.gain, self.cold_slope = float(gain), float(cold_slope)
        self.host_reserve, self.min_change = float(host_reserve), float(min_change)
        B, V = self.num_envs, self.num_vms
        self.faults = np.zeros((B, V))
        self.active = np.zeros((B, V))
        self.nsum = np.zeros(B, dtype=np.int64)
        self.sum_faults = np.zeros((B, V))
        self.sum_ws = np.zeros((B, V))
        self.seen = np.zeros(B, dtype=bool)

    def reset_envs(self, mask: np.ndarray) -> None:
        for a in (self.faults, self.active, self.sum_faults, self.sum_ws):
            a[mask] = 0.0
        self.nsum[mask] = 0
        self.seen[mask] = False

    def observe(self, obs: ObservationView) -> None:
        self.sum_faults += obs.feature("major_fault_rate") * self.refs[None, :]
        self.sum_ws += obs.feature("ws_estimate") * self.M[None, :]
        self.nsum += 1

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        n = np.maximum(self.nsum, 1)[:, None]
        rate, ws = self.sum_faults / n, self.sum_ws / n
        first = ~self.seen
        self.faults = np.where(first[:, None], rate, self.faults + self.gain * (rate - self.faults))
        self.active = np.where(first[:, None], ws, self.active + self.gain * (ws - self.active))
        self.seen |= due
        self.sum_faults[due] = 0.0
        self.sum_ws[due] = 0.0
        self.nsum[due] = 0

        V = self.num_vms
        M = self.M[None, :].astype(np.float64)
        lo = (self.M - self.maxb)[None, :].astype(np.float64)
        swapped = obs.gauge("guest_swap_used").astype(np.float64)
        used = obs.gauge("guest_used_pages").astype(np.float64)
        base = np.clip(self.K[None, :] + self.active, lo, M)
        cold = np.clip(self.K[None, :] + used - base, 0.0, M - base)
        g = self.faults / np.maximum(swapped, 1.0)
        miss = np.clip(np.where(self.faults > 0, np.maximum(swapped, 1.0), 0.0), 0.0, None)
        miss = np.minimum(miss, M - base - cold)
        ell = np.maximum(g, self.cold_slope)
        saved = obs.host_gauge("sharing_saved_frames").astype(np.float64)
        cap = self.H - self.params.host_min_free - self.host_reserve * self.H + saved  # (B,)
        left = cap - base.sum(axis=1)
        # Segments (B, 2V): cold resident at slope ell, missing at slope g.
        sizes = np.concatenate([cold, miss], axis=1)
        slopes = np.concatenate([ell, np.where(miss > 0, g, 0.0)], axis=1)
        order = np.argsort(-slopes, axis=1, kind="stable")
        s_sorted = np.take_along_axis(sizes, order, axis=1)
        before = np.cumsum(s_sorted, axis=1) - s_sorted
        got_sorted = np.clip(left[:, None] - before, 0.0, s_sorted)
        got = np.empty_like(got_sorted)
        np.put_along_axis(got, order, got_sorted, axis=1)
        alloc = base + got[:, :V] + got[:, V:]
        rest = np.maximum(left - got.sum(axis=1), 0.0)
        room = M - alloc
        share = room / np.maximum(room.sum(axis=1, keepdims=True), 1.0)
        alloc = np.minimum(alloc + rest[:, None] * share, M)
        target = M - alloc
        small = np.abs(target - self._targets) < self.min_change * M
        return np.where(small, self._targets, target)


__all__ = [
    "EsxIdleTaxPolicy",
    "EsxPolicy",
    "HyperVPolicy",
    "MomPolicy",
    "MrcPolicy",
    "SelfBalloonPolicy",
]
