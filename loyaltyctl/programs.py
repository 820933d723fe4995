"""Loading program files: YAML with line numbers, validated by the pydantic models.

PyYAML speaks YAML 1.1, so plain scalars are resolved here instead: true/false
are booleans, integers stay integers (a leading zero keeps the text), other
numbers become exact Decimals, and yes/no/on/off stay strings. Duplicate keys
and aliases are refused."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import ValidationError

from .errors import ProgramError
from .models import Program, problems

MAX_BYTES = 1 << 20
_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_DEC = re.compile(r"^[-+]?([0-9][0-9_]*\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError("while composing", None, "aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def _scalar(node: yaml.ScalarNode):
    value = node.value
    if node.style is not None:  # quoted or block scalar: always text
        return value
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("", "~", "null"):
        return None
    if _INT.match(value):
        return int(value.replace("_", ""))
    if _DEC.match(value):
        return Decimal(value.replace("_", ""))
    return value


def _build(node, path: tuple, lines: dict, source: str):
    """Turn composed nodes into Python values, recording the line of every path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ProgramError("mapping keys must be plain names", path=source, line=key_node.start_mark.line + 1)
            key = key_node.value
            if key == "<<":
                raise ProgramError("merge keys (<<) are not allowed", path=source, line=key_node.start_mark.line + 1)
            if key in out:
                raise ProgramError(f"duplicate key {key!r}", path=source, line=key_node.start_mark.line + 1,
                                   field=_field(path + (key,)))
            out[key] = _build(value_node, path + (key,), lines, source)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _field(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(loc: tuple, lines: dict) -> tuple[tuple, int | None]:
    """Map a pydantic error location to the deepest known path (skipping union tags)."""
    path: tuple = ()
    for part in loc:
        if path + (part,) in lines:
            path = path + (part,)
    return path, lines.get(path)


def parse(text: str, source: str) -> tuple[dict, dict]:
    lines: dict = {}
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ProgramError(exc.problem or str(exc), path=source, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ProgramError(f"not valid YAML: {' '.join(str(exc).split())}", path=source) from None  # one line
    if node is None:
        raise ProgramError("empty file", path=source)
    data = _build(node, (), lines, source)
    if not isinstance(data, dict):
        raise ProgramError("the top level must be a mapping of program fields", path=source, line=1)
    return data, lines


def validate(data: dict, lines: dict, source: str) -> Program:
    try:
        program = Program.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path, line = _locate(tuple(err["loc"]), lines)
        message = err["msg"].removeprefix("Value error, ")
        field = _field(path)
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
            field = _field(path + (err["loc"][-1],))
        raise ProgramError(message, path=source, line=line, field=field or None) from None
    for where, message in problems(program):
        path, line = _locate(where, lines)
        raise ProgramError(message, path=source, line=line, field=_field(where))
    return program


def load_program(path: str | Path) -> Program:
    source = str(path)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ProgramError("no such file", path=source) from None
    except IsADirectoryError:
        raise ProgramError("is a directory", path=source) from None
    except OSError as exc:
        raise ProgramError(exc.strerror or str(exc), path=source) from None
    if len(raw) > MAX_BYTES:
        raise ProgramError(f"file is larger than {MAX_BYTES} bytes", path=source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProgramError("not UTF-8 text", path=source) from None
    data, lines = parse(text, source)
    return validate(data, lines, source)


def load_paths(paths: list[str]) -> list[tuple[str, Program]]:
    """Every program in the given files and directories, all validated before returning."""
    files: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
            if not found:
                raise ProgramError("directory has no *.yaml files", path=path)
            files += [str(f) for f in found]
        else:
            files.append(path)
    if not files:
        raise ProgramError("no program files given")
    loaded: list[tuple[str, Program]] = []
    seen: dict[str, str] = {}
    for f in files:
        program = load_program(f)
        if program.code in seen:
            raise ProgramError(f"program code {program.code!r} is also defined in {seen[program.code]}", path=f,
                               line=1, field="code")
        seen[program.code] = f
        loaded.append((f, program))
    return loaded


def _normal(value):
    if isinstance(value, Decimal):
        text = f"{value.normalize():f}"
        return text
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def to_canonical_json(program: Program) -> str:
    """Deterministic JSON of a definition (Decimals as normalised strings): equal text = same program."""
    return json.dumps(_normal(program.model_dump(mode="python")), sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> Program:
    return Program.model_validate(json.loads(text))
