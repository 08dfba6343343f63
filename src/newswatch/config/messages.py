"""Pydantic's errors in the words of someone editing a YAML file.

Pydantic says "Input should be a valid tuple"; a user who wrote
``tags: korea`` needs to hear "use a list, e.g. [korea]". ``translate``
turns one pydantic error into the document path it is about and a message
that says what to write, with "did you mean" for misspelt settings (by
difflib over the field names the model has at that path).

An input value is quoted back only where it cannot be a secret: never for
``SecretStr`` fields, nor for values that came from ``${...}``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Collection
from typing import Any, Final, Literal, Union

from pydantic import BaseModel, SecretStr
from pydantic_core import ErrorDetails

from newswatch.config.models import Config
from newswatch.config.problems import DocPath

CHANNEL_TYPES: Final = (
    "console",
    "email",
    "webhook",
    "slack",
    "discord",
    "telegram",
    "teams",
    "matrix",
    "ntfy",
    "apprise",
)
# Quoted inputs are cut to this many characters: enough to recognise a typo.
MAX_SHOWN: Final = 40

_LIST_TYPES: Final = frozenset(
    {"tuple_type", "list_type", "set_type", "frozen_set_type", "iterable_type"}
)
_MAPPING_TYPES: Final = frozenset({"dict_type", "model_type", "model_attributes_type"})


def translate(
    err: ErrorDetails, hidden: Callable[[DocPath], bool] = lambda path: False
) -> tuple[DocPath, str]:
    """The document path ``err`` is about and a friendly message.

    ``hidden(path)`` says the input at ``path`` must not be quoted (it came
    from the environment or a secret file).
    """
    raw = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    # A discriminated union puts the tag in the path: channels.NAME.email.smtp
    typed: DocPath = tuple(raw)
    path: DocPath = typed
    if len(raw) > 2 and raw[0] == "channels" and raw[2] in CHANNEL_TYPES:
        path = (*typed[:2], *typed[3:])
    kind = err["type"]
    value = err.get("input")
    secret = hidden(path) or _is_secret(typed)
    shown = _show(value, secret)
    got = f", got {shown}" if shown else ""
    ctx = err.get("ctx") or {}

    if kind == "extra_forbidden":
        return path, _unknown_setting(str(path[-1]), _field_names(typed[:-1]))
    if kind == "missing":
        return path, f"'{path[-1]}' is required here"
    if kind == "union_tag_invalid":
        tag = _show(ctx.get("tag"), secret=False)
        return path, f"unknown channel type {tag}; use one of: {', '.join(CHANNEL_TYPES)}"
    if kind == "union_tag_not_found":
        return path, f"a channel needs a 'type' ({', '.join(CHANNEL_TYPES)})"
    if kind in _LIST_TYPES:
        example = shown.strip("'") if shown and isinstance(value, str | int | float) else "a, b"
        return path, f"use a list, e.g. [{example}]"
    if kind in _MAPPING_TYPES:
        return path, f"use a mapping of settings (key: value lines, or {{key: value}}){got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return path, f"expected a whole number{got}"
    if kind in ("float_type", "float_parsing"):
        return path, f"expected a number{got}"
    if kind in ("bool_type", "bool_parsing"):
        return path, f"expected true or false{got}"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool) and not secret:
            return path, f"expected text; put it in quotes: '{value}'"
        return path, f"expected text{got}"
    if kind == "literal_error":
        allowed = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return path, f"must be one of: {allowed}{got}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }
        word, key = words[kind]
        return path, f"must be {word} {ctx.get(key)}{got}"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return path, "must not be empty"
        return path, f"needs at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return path, f"has too many items (at most {ctx.get('max_length')})"
    return path, str(err["msg"]).removeprefix("Value error, ")


def _unknown_setting(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown setting '{name}'; did you mean '{close[0]}'?"
    if known:
        return f"unknown setting '{name}' (settings here: {', '.join(sorted(known))})"
    return f"unknown setting '{name}' (check its spelling)"


def _show(value: Any, secret: bool) -> str | None:
    """How to quote ``value`` back: as written, or (a secret) only what kind it is."""
    if secret:
        return "a list" if isinstance(value, list | tuple) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        text = value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "..."
        return repr(text)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return None


# ------------------------------------------------------------------ the model at a path


def _field_names(path: DocPath) -> list[str]:
    """The setting names the model at ``path`` accepts (empty: unknown)."""
    model = _model_at(path)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _is_secret(path: DocPath) -> bool:
    """Whether the value at ``path`` is (inside) a ``SecretStr`` field."""
    if not path:
        return False
    parent = _model_at(path[:-1])
    field = _field(parent, path[-1]) if parent is not None else None
    if field is None:  # inside a collection: dict[str, SecretStr] (headers)
        grand = _model_at(path[:-2]) if len(path) >= 2 else None
        field = _field(grand, path[-2]) if grand is not None else None
    return field is not None and SecretStr in _flatten(field)


def _field(model: type[BaseModel], name: Any) -> Any:
    for key, info in model.model_fields.items():
        if name in (key, info.alias):
            return info.annotation
    return None


def _flatten(annotation: Any) -> set[Any]:
    """Every type named in ``annotation`` (through unions, Annotated, tuples, dicts)."""
    out: set[Any] = {annotation}
    for arg in typing.get_args(annotation):
        if arg is not Ellipsis and not isinstance(arg, str):
            out |= _flatten(arg)
    return out


def _model_at(path: DocPath) -> type[BaseModel] | None:
    annotation: Any = Config
    for part in path:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    models = [t for t in _members(annotation) if _is_model(t)]
    return models[0] if len(models) == 1 else None


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one path part further down, or None."""
    for member in _members(annotation):
        if _is_model(member):
            found = _field(member, part)
            if found is not None:
                return found
            continue
        origin = typing.get_origin(member)
        args = [a for a in typing.get_args(member) if a is not Ellipsis]
        if origin in (tuple, list) and isinstance(part, int) and args:
            return args[0]
        if origin is dict and len(args) == 2:
            return args[1]
    # A channel's type tag in the path picks the union member.
    tagged = [m for m in _members(annotation) if _is_model(m) and _tag(m) == part]
    return tagged[0] if tagged else None


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (through Annotated and Optional)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not Literal:
        return None
    values = typing.get_args(field.annotation)
    return str(values[0]) if len(values) == 1 else None
