"""Parameter coercion without pydantic for the plain types our commands use.

Typer 0.2x converts every command-line value through a pydantic TypeAdapter:
importing pydantic and building the adapters costs several hundred milliseconds
per process, more than everything `member show` or `earn` does. Our parameters
are str, int, bool, enums and lists of str; `install` gives those a direct
converter with the same results and the same usage errors (exit 2), and leaves
any other type (and any custom parser) to Typer. Typer versions that still use
click's own types have no `_runtime_param`: then this does nothing.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args, get_origin

from .parse import shown


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise ValueError(f"{shown(value)} is not a valid string")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("Input should be a valid integer, unable to parse string as an integer") from None


_BOOLS = {"1": True, "true": True, "t": True, "yes": True, "y": True, "on": True,
          "0": False, "false": False, "f": False, "no": False, "n": False, "off": False}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return _BOOLS[str(value).strip().lower()]
    except KeyError:
        raise ValueError(f"{shown(value)} is not a valid boolean") from None


def _enum(cls: type[Enum]):
    def convert(value: Any) -> Enum:
        if isinstance(value, cls):
            return value
        for member in cls:
            if str(member.value) == value:
                return member
        raise ValueError(f"{shown(value)} is not one of {', '.join(repr(str(m.value)) for m in cls)}.")
    return convert


def _converter(annotation: Any):
    if annotation is str:
        return _to_str
    if annotation is int:
        return _to_int
    if annotation is bool:
        return _to_bool
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _enum(annotation)
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return lambda values: [_to_str(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
    return None


def install(command) -> None:
    """Give every plain-typed parameter in the command tree a pydantic-free converter."""
    try:
        from dataclasses import dataclass, field
        from types import SimpleNamespace
        from typing import Callable

        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:
        return

    @dataclass(frozen=True)
    class Plain(RuntimeParam):
        convert: Callable[[Any], Any] = field(default=_to_str)

        def _coerce_value(self, value, param, ctx):
            try:
                return self.convert(value)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

    # The help option is made per command on first use; make it now so it gets a converter too.
    names = (getattr(command, "context_settings", None) or {}).get("help_option_names") or ["--help"]
    help_ctx = SimpleNamespace(help_option_names=names)

    def walk(cmd) -> None:
        params = list(cmd.params)
        if hasattr(cmd, "_help_option"):
            params.append(cmd.get_help_option(help_ctx))
        for param in params:
            desc = getattr(param, "type_descriptor", None) if param is not None else None
            if desc is None or getattr(param, "_runtime_param", False) is not None:
                continue
            info = desc.parameter_info
            if (getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None
                    or getattr(info, "min", None) is not None or getattr(info, "max", None) is not None):
                continue
            convert = _converter(desc.annotation)
            if convert is not None:
                param._runtime_param = Plain(parameter_info=info, annotation=desc.annotation, convert=convert)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command)
