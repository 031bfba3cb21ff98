"""A scenario module: register your own scenarios, then use them from the CLI.

Any Python file that registers scenarios through ``envs.scenarios.demand_scenario`` or
``envs.scenarios.trace_scenario`` can be passed to ``--scenario-module``::

    reclaim scenarios --scenario-module docs/examples/my_scenarios.py
    reclaim evaluate --scenario-module docs/examples/my_scenarios.py \
        --scenarios my-recordings-v1 --policies esx,no-balloon --seeds 2

This one needs no downloaded data: two VMs replay the page traces of real programs that
ship with ReclaimGym (recorded with valgrind's lackey tool, experiments/traces/data). For
your own traces pass absolute paths (``TraceSpec("lirs", "/data/my.trace.gz")``); for
your own memory-demand series see ``custom_scenario.py`` beside this file.
"""

from envs.scenarios import trace_scenario
from envs.sim.params import TraceSpec

trace_scenario(
    "my-recordings-v1",  # ids end in -v1: the scenario runs the v1 physics
    [TraceSpec("recording", "sqlite3"), TraceSpec("recording", "gzip")],
    overcommit=1.5,  # guest memory / host memory
    guest_pages=512,  # 512 MiB guests (a v1 page stands for 1 MiB)
    refs_per_tick=256,
    steps=128,  # episode length in ticks of 1 s
    description="sqlite3 and gzip side by side on a 1.5x overcommitted host.",
)
