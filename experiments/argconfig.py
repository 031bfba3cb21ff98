"""Dataclass configs as command-line options (the CleanRL/tyro habit, without tyro).

Every field of a config dataclass becomes ``--field-name``; the string literal written
under the field (its attribute docstring) becomes the option's ``--help``. Types:
``int``, ``float``, ``str``, ``bool`` (``--flag`` / ``--no-flag``), ``X | None`` (the
literal ``none`` gives None) and ``tuple[X, ...]`` (comma-separated). Fields whose
default is None and whose docstring says so are "per-algorithm defaults" resolved by the
config itself, never filled in later.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import cache
from typing import Any


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstring of each field of dataclass ``cls`` (``{}`` if unreadable)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union type {tp}")
        return args[0], True
    return tp, False


def _parser_for(tp: Any, optional: bool):
    origin = typing.get_origin(tp)
    if origin is tuple:
        (elem, *_rest) = typing.get_args(tp)
        conv = _parser_for(elem, False)

        def parse_tuple(text: str) -> tuple[Any, ...] | None:
            if optional and text.lower() == "none":
                return None
            return tuple(conv(t) for t in text.split(",") if t.strip())

        parse_tuple.__name__ = f"comma-separated {getattr(elem, '__name__', elem)}s"
        return parse_tuple
    if tp not in (int, float, str):
        raise TypeError(f"unsupported field type {tp}")

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        return tp(text)

    parse.__name__ = tp.__name__
    return parse


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple = ()) -> None:
    """Add one option per field of dataclass ``cls`` (except ``skip``) to ``parser``."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp, optional = _unwrap(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flag = "--" + f.name.replace("_", "-")
        doc = docs.get(f.name, "")
        if tp is bool:
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"{doc} (default: {default})",
            )
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        parser.add_argument(
            flag,
            dest=f.name,
            type=_parser_for(tp, optional),
            default=default,
            metavar=f.name.upper(),
            help=f"{doc} (default: {shown})",
        )


def dataclass_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """Build ``cls`` from the parsed options (fields missing from ``args`` keep defaults)."""
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    kw.update(extra)
    return cls(**kw)
