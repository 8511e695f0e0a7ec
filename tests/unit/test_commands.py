"""``%virt``'s command table: every command and option explained, misuse one line."""

from __future__ import annotations

import argparse

import pytest
from IPython.core.error import UsageError

from ipyvirt.commands import COMMANDS, HelpRequested, build_parser, overview


def test_every_command_and_option_has_help() -> None:
    parser = build_parser()
    assert parser.commands() == [c.name for c in COMMANDS]
    for name in parser.commands():
        command = parser.command(name)
        assert command.description, name
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


def test_every_command_has_a_handler() -> None:
    from ipyvirt.magics import VirtMagics

    for command in COMMANDS:
        assert callable(getattr(VirtMagics, f"_{command.name}", None)), command.name


def test_help_lists_every_command() -> None:
    parser = build_parser()
    with pytest.raises(HelpRequested) as shown:
        parser.parse_known_args(["--help"])
    assert shown.value.text == overview(parser)
    lines = shown.value.text.splitlines()
    for command in COMMANDS:
        assert any(line.startswith(f"%virt {command.name}") for line in lines), command.name
        assert f"    {command.help}" in lines
    assert "%virt connect [--rw] [--name NAME] [--auth] [URI]" in lines


def test_a_command_help_names_its_options() -> None:
    with pytest.raises(HelpRequested) as shown:
        build_parser().parse_known_args(["events", "-h"])
    text = shown.value.text
    assert text.startswith("usage: %virt events [-h] [--last N] [--follow | --stop] [NAME]")
    for option in ("--last N", "--follow", "--stop", "-h, --help"):
        assert option in text


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["events", "--last", "x"], "%virt events: argument --last: invalid int value: 'x'"),
        (
            ["events", "--follow", "--stop"],
            "%virt events: argument --stop: not allowed with argument --follow",
        ),
        (["connect", "a", "b"], "%virt connect: unrecognized arguments: b"),
    ],
)
def test_misuse_is_one_usage_error_line(words: list[str], says: str) -> None:
    parser = build_parser()
    with pytest.raises(UsageError) as raised:
        args, extra = parser.parse_known_args(words)
        parser.command(args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    message = str(raised.value)
    assert message == f"{says}; see %virt {words[0]} --help"
