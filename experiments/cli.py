"""The ``reclaim`` command: one entry point, one subcommand per job.

Each subcommand is a frozen config dataclass parsed by `tyro <https://brentyi.github.io/tyro/>`_
(the attribute docstring under each field is its ``--help``) and a ``run(config) -> int``.

Exit status: 0 success; 1 a failed check (a replay that does not match its record, a
missed fact under ``validate --strict``);
2 a user error, reported as ONE line on stderr naming the argument and what it allows.
User errors are the configs' validation (``ValueError`` from ``__post_init__``, raised
while parsing, before any work starts) and, later, only the project's own user-error
types (:class:`experiments.user_errors.UserError`, :class:`agents.learners.sb3.train.ConfigError`).
Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Union

import tyro

from agents.learners.imitation import ImitateConfig
from agents.learners.sb3.train import ConfigError, TrainConfig
from experiments import (
    ablate,
    bench_cmd,
    compare,
    data_cmd,
    demo,
    evaluate,
    fidelity,
    imitate,
    replay,
    scenarios_cmd,
    train,
    tune,
    validate,
)
from experiments.user_errors import UserError

PROG = "reclaim"

# name -> (config class, run(config) -> exit status, one-line description)
COMMANDS: dict[str, tuple[type, Callable[[Any], int], str]] = {
    "demo": (demo.DemoConfig, demo.run, "a reduced compare on the default scenario"),
    "bench": (bench_cmd.BenchConfig, bench_cmd.run, "measure simulator throughput and fidelity"),
    "replay": (replay.ReplayConfig, replay.run, "replay an episode record and check every counter"),
    "scenarios": (scenarios_cmd.ScenariosConfig, scenarios_cmd.run,
                  "list the scenarios; --headroom measures each one's headroom"),
    "fidelity": (fidelity.FidelityConfig, fidelity.run, "simulator LRU vs libCacheSim exact LRU"),
    "evaluate": (evaluate.EvaluateConfig, evaluate.run, "evaluate policies on scenarios"),
    "validate": (validate.ValidateConfig, validate.run, "check the physics against the literature"),
    "train": (TrainConfig, train.run, "train an RL agent (one algorithm, scenario set and seed)"),
    "compare": (
        compare.CompareConfig,
        compare.run,
        "train on train scenarios, evaluate on test scenarios, report with rliable",
    ),
    "tune": (tune.TuneConfig, tune.run, "Optuna hyperparameter search on train scenarios"),
    "ablate": (ablate.AblateConfig, ablate.run, "agent-design ablations on train scenarios"),
    "data": (data_cmd.DataConfig, data_cmd.run,
             "check the published traces and demand series: present, missing or damaged"),
    "imitate": (ImitateConfig, imitate.run, "train a network by DAgger from a teacher policy"),
}  # fmt: skip


class ParseError(UserError):
    """A command line that tyro rejected, as one line."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


def _one_line(event: Any) -> None:
    """tyro parse-error hook: raise :class:`ParseError` with a one-line message.

    Events it does not know fall through to tyro's own (boxed) message, still exit 2.
    """
    from tyro import _errors as te

    def flag(arg: Any) -> str:
        if arg.is_positional():
            return str(arg.lowered.metavar)
        return "/".join(arg.lowered.name_or_flags)

    if isinstance(event, te.InstantiationFailure):
        msg = " ".join(str(event.message).split())
        if event.argument is not None:
            arg = event.argument
            msg = f"argument {flag(arg)}: {msg} (expected {arg.lowered.metavar})"
        raise ParseError(event.prog, msg)
    if isinstance(event, te.InvalidChoice):
        choices = ", ".join(map(str, event.choices))
        arg = flag(event.argument)
        raise ParseError(event.prog, f"argument {arg}: invalid choice {event.value!r} "
                                     f"(choose from {choices})")  # fmt: skip
    if isinstance(event, te.UnrecognizedArgs):
        raise ParseError(
            event.prog,
            f"unrecognized arguments: {' '.join(event.tokens)} (see {event.prog} --help)",
        )
    if isinstance(event, te.MissingSubcommand):
        names = ", ".join(event.subcommand_spec.parser_from_name)
        raise ParseError(event.prog, f"a command is required, one of: {names}")
    if isinstance(event, te.MissingArgs):
        names = ", ".join(flag(a.arg) for a in event.missing_arguments)
        raise ParseError(event.prog, f"missing required argument(s): {names}")
    if isinstance(event, te.BadValue):
        raise ParseError(event.prog, f"argument {flag(event.argument)}: missing or bad value")


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    # tyro's parse-error hook is experimental (tyro._errors): without it, tyro's own
    # boxed messages are printed instead (still exit status 2).
    try:
        from tyro._errors import on_parse_error
    except ImportError:  # pragma: no cover - older tyro
        yield
        return
    with on_parse_error(_one_line):
        yield


def parse(argv: Sequence[str] | None = None) -> Any:
    """The config of the subcommand that ``argv`` selects (validated)."""
    union = Union[  # noqa: UP007 - a runtime Union of annotated types, for tyro
        tuple(
            Annotated[cls, tyro.conf.subcommand(name, description=text, prefix_name=False)]
            for name, (cls, _, text) in COMMANDS.items()
        )
    ]
    with _one_line_errors():
        return tyro.cli(
            union,  # type: ignore[arg-type]
            prog=PROG,
            description="ReclaimGym: memory reclamation in overcommitted virtualization hosts.",
            args=list(sys.argv[1:] if argv is None else argv),
        )


def _command_of(config: Any) -> tuple[str, Callable[[Any], int]]:
    for name, (cls, run, _) in COMMANDS.items():
        if type(config) is cls:
            return name, run
    raise TypeError(f"no command takes a {type(config).__name__}")


def _fail(prog: str, err: BaseException) -> int:
    print(f"{prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse(argv)
    except ParseError as e:
        # tyro names the root program for errors found while building the config.
        name = next((a for a in argv if a in COMMANDS), None)
        return _fail(f"{PROG} {name}" if name and e.prog == PROG else e.prog, e)
    name, run = _command_of(config)
    try:
        return int(run(config) or 0)
    except (UserError, ConfigError) as e:
        return _fail(f"{PROG} {name}", e)


if __name__ == "__main__":
    sys.exit(main())
