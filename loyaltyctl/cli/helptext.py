"""Help pages in Typer's panel layout (usage, help text, argument, option and command
panels), drawn with Rich's console, table, panel and columns alone.

typer.rich_utils draws the same pages but imports Rich's Markdown, traceback and syntax
modules for features these pages do not use: about 40 ms, a fifth of `--help` (issue 19).
One deliberate difference: help paragraphs are rewrapped (see rewrap)."""

from __future__ import annotations

import inspect
import os
from collections import defaultdict

from rich.columns import Columns
from rich.console import Console, Group
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

THEME = {"option": "bold cyan", "switch": "bold green", "negative_option": "bold magenta",
         "negative_switch": "bold red", "types": "bold yellow", "types_sep": "dim", "usage": "yellow"}


class _Options(RegexHighlighter):
    highlights = [r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])", r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
                  r"(?P<types>\<[^\>]+\>)", r"(?P<usage>Usage: )"]


class _Negative(RegexHighlighter):
    highlights = [r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
                  r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])"]


class _Types(RegexHighlighter):
    highlights = [r"^(?P<types_sep>(\[|<))", r"(?P<types_sep>\|)", r"(?P<types_sep>(\]|>))(\.\.\.)?$"]


OPTIONS, NEGATIVE, TYPES = _Options(), _Negative(), _Types()


def page(command, ctx) -> None:
    """Print a command's or group's help page."""
    out = _console()
    out.print(Padding(OPTIONS(command.get_usage(ctx)), 1), style="bold")
    if command.help:
        out.print(Padding(_help_text(command.help), (0, 1, 1, 1)))
    arguments, options = defaultdict(list), defaultdict(list)
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            arguments[getattr(param, "rich_help_panel", None) or "Arguments"].append(param)
        else:
            options[getattr(param, "rich_help_panel", None) or "Options"].append(param)
    for panels, first in ((arguments, "Arguments"), (options, "Options")):
        for name in sorted(panels, key=lambda n: n != first):
            out.print(_panel(name, _params_table(panels[name], ctx)))
    if hasattr(command, "list_commands"):
        _commands(out, command, ctx)
    if command.epilog:
        out.print(Padding(_markup(command.epilog), 1))


def _console() -> Console:
    import typer.core

    width = os.environ.get("TERMINAL_WIDTH")
    force = any(os.environ.get(v) for v in ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS")) or None
    if os.environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    plain = os.environ.get("NO_COLOR") or not typer.core.HAS_RICH
    return Console(theme=Theme(THEME), highlighter=OPTIONS, color_system=None if plain else "auto",
                   force_terminal=force, width=int(width) if width and width.isdigit() else None)


def _markup(text: str, style: str = "") -> Text:
    # emoji=False: no help text has :emoji: codes, and Rich's table of them is 2 ms to import
    return OPTIONS(Text.from_markup(inspect.cleandoc(text), style=style, emoji=False))


def rewrap(help: str) -> str:
    """The help text with each paragraph's single line breaks joined, so the terminal wraps
    them (Typer keeps them after the first paragraph: a docstring line wider than the
    terminal then leaves a stub line); a paragraph that starts with \\b keeps its lines, as in click."""
    paragraphs = inspect.cleandoc(help).split("\n\n")
    return "\n\n".join(p[1:].lstrip("\n") if p.startswith("\b") else p.replace("\n", " ") for p in paragraphs)


def _help_text(help: str):
    """The first paragraph as one line, the rest dim."""
    first, *rest = rewrap(help).partition("\f")[0].split("\n\n")
    parts = [_markup(first.strip())]
    if rest:
        parts += [Text(""), _markup("\n\n".join(rest), style="dim")]
    return Group(*parts)


def _panel(title: str, table: Table) -> Panel:
    return Panel(table, border_style="dim", title=title, title_align="left")


def _params_table(params: list, ctx) -> Table:
    table = Table(highlight=True, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                  pad_edge=False, padding=(0, 1))
    starred = any(p.required for p in params)
    for param in params:
        table.add_row(*([Text("*", style="red") if param.required else ""] if starred else []), *_param_row(param, ctx))
    return table


def _param_row(param, ctx) -> list:
    argument = param.param_type_name == "argument"
    shown = param.metavar if argument and param.metavar is not None else param.name
    if argument and param.metavar is None and param.nargs != 1:
        shown += "..."
    long = [o for o in param.opts if "--" in o]
    short = [shown if argument else o for o in param.opts if "--" not in o]
    negative_long = [o for o in param.secondary_opts if "--" in o]
    negative_short = [o for o in param.secondary_opts if "--" not in o]
    kind = Text(style="bold yellow", overflow="fold")
    kind.append(param.display_type_rich(ctx=ctx) or "")
    span = param._get_number_range_help_str() if hasattr(param, "_get_number_range_help_str") else None
    if span:
        kind.append(f" [{span}]")
    return [OPTIONS(",".join(long)), OPTIONS(",".join(short)), NEGATIVE(",".join(negative_long)),
            NEGATIVE(",".join(negative_short)), TYPES(kind), _param_help(param, ctx)]


def _param_help(param, ctx) -> Columns:
    """The option's help, then its environment variable, default and [required], as Typer words them."""
    items = []
    help = getattr(param, "help", None)
    if help:
        paragraphs = [p.replace("\n", " ").strip() if not p.startswith("\b") else p.strip("\b\n") + "\n"
                      for p in help.split("\n\n")]
        items.append(_markup("\n".join(paragraphs).strip()))
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", None):
        items.append(Text(f"[env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}]", style="dim yellow"))
    if hasattr(param, "_extract_default_help_str"):
        default = param._extract_default_help_str(ctx=ctx)
        named = isinstance(param.show_default, str)
        if named or (default is not None and (param.show_default or ctx.show_default)):
            text = param._get_default_string(ctx=ctx, show_default_is_str=named, default_value=default)
            if text:
                items.append(Text(f"[default: {text}]", style="dim"))
    if param.required:
        items.append(Text("[required]", style="dim red"))
    return Columns(items)


def _commands(out: Console, group, ctx) -> None:
    panels = defaultdict(list)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            panels[getattr(command, "rich_help_panel", None) or "Commands"].append(command)
    width = max((len(c.name or "") for commands in panels.values() for c in commands), default=0)
    for title in sorted(panels, key=lambda n: n != "Commands"):
        table = Table(highlight=False, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                      pad_edge=False, padding=(0, 1))
        table.add_column(style="bold cyan", no_wrap=True, width=width)
        table.add_column("Description", justify="left", no_wrap=False, ratio=10)
        for command in panels[title]:
            summary = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
            table.add_row(Text(command.name or ""), _markup(summary.replace("\b\n", "").strip()))
        out.print(_panel(title, table))
