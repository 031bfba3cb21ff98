"""A scenario from your own data: VMs that follow memory-demand series you recorded.

``demand_scenario`` takes files in the published Bitbrains layout (``;``-separated, with
the ``Timestamp [ms]``, ``Memory capacity provisioned [KB]`` and ``Memory usage [KB]``
columns). Here we write two small synthetic series first, so the script runs anywhere::

    python docs/examples/custom_scenario.py [--seeds 2] [--steps 120]
"""

import argparse
import gzip
import math
import tempfile
from pathlib import Path

from envs.scenarios import demand_scenario
from experiments.evaluate import run_policy

HEADER = ";\t".join(["Timestamp [ms]", "Memory capacity provisioned [KB]", "Memory usage [KB]"])


def write_series(path: Path, period_samples: int, phase: float) -> None:
    """A VM of 4 GiB whose used memory swings between 10 % and 90 % of it."""
    cap_kb = 4 * 1024 * 1024
    rows = [HEADER]
    for i in range(200):  # one sample every 5 minutes, as Bitbrains
        used = cap_kb * (0.5 + 0.4 * math.sin(2 * math.pi * i / period_samples + phase))
        rows.append(f"{1_372_629_804 + 300 * i};\t{cap_kb:.1f};\t{used:.1f}")
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=120, help="ticks per episode")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="my-demand-"))
    paths = []
    for k in range(2):
        path = folder / f"vm{k}.csv.gz"
        write_series(path, period_samples=24 + 12 * k, phase=k * math.pi)
        paths.append(str(path))

    # Each of the 4 VMs replays one of the series (chosen from the episode's seed), one
    # sample every `ticks_per_sample` ticks; shorter than Bitbrains' real-time 300 here.
    demand_scenario("my-demand-v1", paths, num_vms=4, overcommit=1.6, guest_pages=1024,
                    ticks_per_sample=10, steps=args.steps)

    # Natively batched evaluation: one env per seed, stepped together (reclaim evaluate's
    # engine); each row is one episode's summary.
    for name in ("no-balloon", "esx"):
        rows = run_policy(name, "my-demand-v1", seeds=range(args.seeds))
        mean = sum(r["return"] for r in rows) / len(rows)
        print(f"{name:>10}: mean return {mean:8.3f} over {args.seeds} seeds")


if __name__ == "__main__":
    main()
