"""Loading program files: YAML with line numbers, validated by the pydantic models.

PyYAML speaks YAML 1.1, so plain scalars are resolved here instead: true/false
are booleans, null/~/empty is None, integers stay integers (a leading zero keeps
the text, so `01234` is never octal), other numbers become exact Decimals read
from their source text, and yes/no/on/off stay strings. Duplicate keys, merge
keys, explicit tags, anchors and aliases are refused, so alias bombs and
object construction are impossible.

Every mapping key and sequence item has its line recorded by path, e.g.
("tiers", "levels", 2, "threshold") -> 14, so that the first validation error is
reported as `file:line: tiers.levels[2].threshold: message`."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import ProgramError
from ..core.schema import RULE_KINDS, Program

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_DEC = re.compile(r"^[-+]?([0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)([eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")

Lines = dict[tuple, int]


class _Loader(yaml.SafeLoader):
    """Composes nodes only (never constructs Python objects), refusing tags, anchors and aliases."""

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self.source = source
        self.depth = 0
        self.first_anchor: int | None = None

    def _refuse(self, message: str, mark) -> None:
        raise ProgramError(message, path=self.source, line=mark.line + 1)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._refuse("aliases are not allowed", event.start_mark)
        if event.tag is not None:
            self._refuse(f"tags are not allowed ({event.tag})", event.start_mark)
        if event.anchor is not None and self.first_anchor is None:
            # Refused once the document is read, so that a use of it is reported as the alias.
            self.first_anchor = event.start_mark.line + 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._refuse(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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


def _build(node, path: tuple, lines: Lines, source: str):
    """Turn composed nodes into Python values, recording the line of every path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ProgramError("mapping keys must be plain names", path=source, line=line, field=_field(path) or None)
            key = key_node.value
            if key == "<<" and key_node.style is None:
                raise ProgramError("merge keys (<<) are not allowed", path=source, line=line, field=_field(path) or None)
            if key in out:
                raise ProgramError(f"duplicate key {key!r}", path=source, line=line, field=_field(path + (key,)))
            lines[path + (key,)] = line
            out[key] = _build(value_node, path + (key,), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _field(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(loc: tuple, lines: Lines) -> tuple[tuple, int | None]:
    """The deepest path of `loc` present in the file, and its line."""
    path: tuple = ()
    for part in loc:
        if path + (part,) not in lines:
            break
        path = path + (part,)
    return path, lines.get(path)


def parse(text: str, source: str) -> tuple[dict, Lines]:
    """The program mapping of a YAML text and the line of every path in it."""
    lines: Lines = {}
    loader = None
    try:
        loader = _Loader(text, source)  # the reader checks every character here
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = "; ".join(part for part in (exc.context, exc.problem) if part) or "not valid YAML"
        raise ProgramError(f"YAML syntax error: {message}", path=source, line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise ProgramError(f"YAML syntax error: {exc.reason}", path=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ProgramError(f"YAML syntax error: {' '.join(str(exc).split())}", path=source) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.first_anchor is not None:
        raise ProgramError("anchors and aliases are not allowed", path=source, line=loader.first_anchor)
    if node is None:
        raise ProgramError("empty file: expected a mapping of program fields", path=source)
    data = _build(node, (), lines, source)
    if not isinstance(data, dict):
        raise ProgramError("the top level must be a mapping of program fields", path=source, line=lines[()])
    return data, lines


def _error_path(err: dict) -> tuple:
    """The path in the file a pydantic error concerns."""
    loc = tuple(err["loc"])
    if len(loc) >= 3 and loc[0] == "earn" and isinstance(loc[1], int) and loc[2] in RULE_KINDS:
        loc = loc[:2] + loc[3:]  # drop the union's tag: ('earn', 0, 'event', 'points') is earn[0].points
    return loc + tuple((err.get("ctx") or {}).get("where", ()))


def validate(data: dict, lines: Lines, source: str) -> Program:
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
    loc = _error_path(err)
    path, line = _locate(loc, lines)
    field = _field(path)
    message = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "required field is missing"
        field = _field(path + loc[len(path):][:1])
    elif kind == "union_tag_not_found":
        message = f"required field is missing (one of: {', '.join(RULE_KINDS)})"
        field = _field(path + ("rule",))
    elif kind == "union_tag_invalid":
        message = f"unknown rule {err['ctx']['tag']!r} (known: {', '.join(RULE_KINDS)})"
        path, line = _locate(loc + ("rule",), lines)
        field = _field(path)
    elif kind == "string_type":
        given = err.get("input")
        message = {dict: "must be text, not a mapping", list: "must be text, not a list", type(None): "must be text"}.get(
            type(given), "must be text (put it in quotes)")
    elif kind == "literal_error" and "expected" in (err.get("ctx") or {}):
        message = f"must be {err['ctx']['expected']}, not {err.get('input')!r}"
    raise ProgramError(message, path=source, line=line, field=field or None)


def _read(path: str | Path) -> tuple[Program, Lines]:
    source = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ProgramError("no such file", path=source) from None
    except IsADirectoryError:
        raise ProgramError("is a directory", path=source) from None
    except OSError as exc:
        raise ProgramError(exc.strerror or str(exc), path=source) from None
    if len(raw) > MAX_BYTES:
        raise ProgramError(f"file is larger than {MAX_BYTES} bytes (1 MiB)", path=source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ProgramError("not UTF-8 text", path=source, line=line) from None
    data, lines = parse(text, source)
    return validate(data, lines, source), lines


def load_program(path: str | Path) -> Program:
    """One validated program file; any problem is a ProgramError naming file:line: field."""
    return _read(path)[0]


def load_paths(paths: list[str]) -> list[tuple[str, Program]]:
    """Every program in the given files and directories (their *.yaml and *.yml, by name),
    all validated before returning; a program code may be defined only once."""
    loaded, errors = check_paths(paths)
    if errors:
        raise errors[0]
    return loaded


def check_paths(paths: list[str]) -> tuple[list[tuple[str, Program]], list[ProgramError]]:
    """Like load_paths, but reading on past a bad file: the programs that are valid, and one
    error for each problem (a bad file, an empty directory, a code defined twice)."""
    files, errors = _program_files(paths)
    loaded: list[tuple[str, Program]] = []
    seen: dict[str, str] = {}
    read: set[Path] = set()
    for f in files:
        same = Path(f).resolve()
        if same in read:  # the same file named twice, e.g. `programs/ programs/coffee.yaml`
            continue
        read.add(same)
        try:
            program, lines = _read(f)
        except ProgramError as exc:
            errors.append(exc)
            continue
        if program.code in seen:
            errors.append(ProgramError(f"program code {program.code!r} is also defined in {seen[program.code]}",
                                       path=f, line=lines.get(("code",)), field="code"))
            continue
        seen[program.code] = f
        loaded.append((f, program))
    return loaded, errors


def _program_files(paths: list[str]) -> tuple[list[str], list[ProgramError]]:
    files: list[str] = []
    errors: list[ProgramError] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted((f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and not f.name.startswith(".")
                            and f.is_file()), key=lambda f: f.name)
            if not found:
                errors.append(ProgramError("directory has no *.yaml or *.yml files", path=str(path)))
            files += [str(f) for f in found]
        else:
            files.append(str(path))
    if not files and not errors:
        errors.append(ProgramError("no program files given"))
    return files, errors


def _normal(value):
    if isinstance(value, Decimal):
        return "0" if value == 0 else f"{value.normalize():f}"
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def to_canonical_json(program: Program) -> str:
    """Deterministic JSON of a definition (sorted keys, Decimals as normalised strings, no
    spaces): equal text = same program, whatever the spelling (1.5 or 1.50) or key order."""
    return json.dumps(_normal(program.model_dump(mode="python")), sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> Program:
    """The program of a canonical JSON text (exact inverse of to_canonical_json)."""
    try:
        return Program.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ProgramError(f"stored definition is not a valid program: {' '.join(str(exc).split())}") from None
