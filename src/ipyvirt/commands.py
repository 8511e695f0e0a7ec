"""``%virt``'s commands as one table, and the argparse parser built from it.

The table is the single source: the parser, ``%virt --help`` and each ``%virt COMMAND
--help`` are generated from it, and a test checks that every command and option in it has
help text. argparse never prints to stderr nor exits here: in a kernel a ``SystemExit`` would
be a traceback and stderr an unexplained red box, so misuse is one line of ``UsageError``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, NoReturn

from IPython.core.error import UsageError

__all__ = ["COMMANDS", "Argument", "Command", "HelpRequested", "VirtParser", "build_parser"]


@dataclass(frozen=True)
class Argument:
    """One positional argument or option of a command: ``add_argument(*flags, **options)``."""

    flags: tuple[str, ...]
    help: str
    options: dict[str, Any] = field(default_factory=dict)
    #: arguments with the same group name exclude each other
    group: str | None = None


@dataclass(frozen=True)
class Command:
    """One ``%virt COMMAND``: its name, what it does in a line, its arguments."""

    name: str
    help: str
    arguments: tuple[Argument, ...] = ()


def _name(what: str) -> Argument:
    return Argument(
        ("name",),
        f"the connection {what} (default: the latest one opened)",
        {"nargs": "?", "metavar": "NAME"},
    )


COMMANDS: tuple[Command, ...] = (
    Command(
        "connect",
        "open a connection and return it (read-only unless --rw)",
        (
            Argument(
                ("uri",),
                "the libvirt URI to open (default: VirtMagics.default_uri, which is "
                "$LIBVIRT_DEFAULT_URI or test:///default)",
                {"nargs": "?", "metavar": "URI"},
            ),
            Argument(("--rw",), "open read-write, so actions work", {"action": "store_true"}),
            Argument(
                ("--name",),
                "what other %virt commands call it (default: its URI)",
                {"metavar": "NAME"},
            ),
            Argument(
                ("--auth",),
                "ask for a user name and passphrase if libvirt wants them (kept in memory only)",
                {"action": "store_true"},
            ),
        ),
    ),
    Command("disconnect", "close a connection and stop watching it", (_name("to close"),)),
    Command("list", "the domains with their state and reason", (_name("to list"),)),
    Command(
        "events",
        "the recent events of a connection; --follow keeps the table live",
        (
            _name("whose events to show"),
            Argument(
                ("--last",),
                "how many of the latest events to show (default: 20)",
                {"type": int, "default": 20, "metavar": "N"},
            ),
            Argument(
                ("--follow",),
                "keep the table live between cells (replaces an earlier live table)",
                {"action": "store_true"},
                group="mode",
            ),
            Argument(
                ("--stop",),
                "stop keeping the table of --follow live",
                {"action": "store_true"},
                group="mode",
            ),
        ),
    ),
    Command(
        "dashboard",
        "live domain table, actions, usage, events and loop, in tabs",
        (
            _name("to show"),
            Argument(
                ("--thumbnails",),
                "a small picture of each running domain's screen in the table (read-write)",
                {"action": "store_true"},
            ),
        ),
    ),
    Command(
        "explore",
        "walk a hypervisor: host, domains, networks, storage, node devices, secrets, live",
        (_name("to explore"),),
    ),
    Command(
        "show",
        "one domain in depth, live: overview and charts, devices, snapshots, its XML",
        (
            Argument(
                ("domain",), "the domain's name (%virt list names them)", {"metavar": "DOMAIN"}
            ),
            Argument(
                ("--name",),
                "the connection it is on (default: the latest one opened)",
                {"metavar": "NAME"},
            ),
        ),
    ),
    Command(
        "fleet",
        "many hosts as one: fleet add URI..., remove NAME..., list, dashboard",
        (
            Argument(
                ("action",),
                "add (hosts by URI, opened concurrently off the loop), remove (hosts by "
                "name), list (each host's health), dashboard (one live view of them all)",
                {"choices": ["add", "remove", "list", "dashboard"], "metavar": "ACTION"},
            ),
            Argument(
                ("targets",),
                "add: URIs, NAME=URI to name a host (default: its host name or socket "
                "directory); remove: host names",
                {"nargs": "*", "metavar": "URI|NAME"},
            ),
            Argument(("--rw",), "add: open read-write, so actions work", {"action": "store_true"}),
            Argument(
                ("--timeout",),
                "seconds without an answer before a host shows as not responding (default: 5)",
                {"type": float, "metavar": "S"},
            ),
        ),
    ),
    Command(
        "console",
        "a domain's serial console, live: type into it, or script it (send, expect, text)",
        (
            Argument(("domain",), "the domain whose console to open", {"metavar": "DOMAIN"}),
            Argument(
                ("--name",),
                "the connection to use (default: the latest one opened; it must be --rw)",
                {"metavar": "NAME"},
            ),
            Argument(
                ("--force",),
                "take the console over from another client that holds it",
                {"action": "store_true"},
            ),
        ),
    ),
    Command("loop", "the event loop's fd watches, timers and counters"),
    Command("status", "ipyvirt's loops, threads and connections"),
)


class HelpRequested(Exception):
    """``-h``/``--help`` was given: the magic prints :attr:`text` instead of argparse exiting."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _Help(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show this help")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        text = overview(parser) if isinstance(parser, VirtParser) and parser.top else None
        raise HelpRequested(text or parser.format_help())


class VirtParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``UsageError`` line naming the command."""

    def __init__(self, *, top: bool = False, **kwargs: Any) -> None:
        super().__init__(add_help=False, **kwargs)
        self.top = top
        self.add_argument("-h", "--help", action=_Help)

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse's messages may wrap
        raise UsageError(f"{self.prog}: {message}; see {self.prog} --help")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        # nothing in the table exits (help raises HelpRequested); never a SystemExit in a kernel
        raise UsageError(f"{self.prog}: {' '.join((message or 'exit').split())}")

    def _print_message(self, message: str, file: Any = None) -> None:
        raise AssertionError("argparse printed; every path should raise instead")  # invariant

    def command(self, name: str) -> VirtParser:
        """The parser of ``%virt NAME``."""
        sub = _subparsers(self).choices[name]
        assert isinstance(sub, VirtParser)
        return sub

    def commands(self) -> list[str]:
        return list(_subparsers(self).choices)


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("the top parser has subparsers")  # build_parser adds them


def build_parser(commands: tuple[Command, ...] = COMMANDS) -> VirtParser:
    """The ``%virt`` parser: one subparser per command of the table."""
    top = VirtParser(prog="%virt", top=True, description="Explore libvirt hypervisors.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=VirtParser)
    for command in commands:
        parser = sub.add_parser(
            command.name,
            help=_literal(command.help),
            description=command.help,
            prog=f"%virt {command.name}",
        )
        groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
        for arg in command.arguments:
            target: argparse._ActionsContainer = parser
            if arg.group is not None:
                if arg.group not in groups:
                    groups[arg.group] = parser.add_mutually_exclusive_group()
                target = groups[arg.group]
            target.add_argument(*arg.flags, help=_literal(arg.help), **arg.options)
    return top


def _literal(text: str) -> str:
    """*text* as argparse shows it: it formats help strings with ``%``, as in ``%(default)s``."""
    return text.replace("%", "%%")


def usage_line(parser: argparse.ArgumentParser) -> str:
    """``%virt COMMAND [options] [ARGS]``, without the ``-h`` every command has."""
    formatter = parser._get_formatter()
    actions = [a for a in parser._actions if not isinstance(a, _Help)]
    formatter.add_usage(None, actions, parser._mutually_exclusive_groups, prefix="")
    return " ".join(formatter.format_help().split())


def overview(top: VirtParser) -> str:
    """``%virt --help``: every command's usage and what it does."""
    lines = ["%virt COMMAND ...: explore libvirt hypervisors (%virt COMMAND --help for more)", ""]
    for name in top.commands():
        parser = top.command(name)
        lines += [usage_line(parser), f"    {parser.description}"]
    return "\n".join(lines)
