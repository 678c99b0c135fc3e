"""Every command the README and the docs show is one the installed tools accept.

The fenced shell blocks of README.md, CHANGELOG.md and every page under docs/ are split into commands.
A ``culturesafe ...`` command must name existing sub-commands and flags, spelled out in full (argparse would
also take an abbreviation), and parse with the real parser (``culturesafe_ext.cli.build_parser``): types,
choices and required options included. An ``lm_eval ...`` command (also after ``accelerate launch ... -m``)
must parse with lm-eval's own CLI, name only flags lm-eval's ``run`` command has, a registered model and,
unless it adds an ``--include_path``, tasks and groups that our task YAMLs define.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL_FENCES = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\s`]*)[^\n]*$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One shell command from a fenced block: where it was written and its words."""

    path: Path
    line: int
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: {shlex.join(self.words)}"


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of each fenced block whose info string names a shell."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m["fence"], m["info"].lower(), i + 1
        end = start
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if info in SHELL_FENCES:
            indent = len(m["indent"])
            blocks.append((start + 1, "\n".join(line[indent:] for line in lines[start:end])))
        i = end + 1
    return blocks


def split_commands(body: str) -> list[tuple[int, str]]:
    """(line offset, text) of each command: newlines, ``;``, ``&&``, ``||`` and ``|`` outside quotes end one;
    a backslash-newline continues it; ``#`` starting a word comments out the rest of the line."""
    commands: list[tuple[int, str]] = []
    current, quote, line, start_line, i = [], "", 0, 0, 0

    def flush() -> None:
        text = "".join(current).strip()
        if text:
            commands.append((start_line, text))
        current.clear()

    while i < len(body):
        c = body[i]
        if not current or not "".join(current).strip():
            start_line = line
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(body):
                current.append(body[i : i + 2])
                i += 2
                continue
            if c == quote:
                quote = ""
            if c == "\n":
                line += 1
            current.append(c)
        elif c in "'\"":
            quote = c
            current.append(c)
        elif c == "\\" and body[i + 1 : i + 2] == "\n":
            current.append(" ")
            line += 1
            i += 2
            continue
        elif c == "#" and (not current or current[-1][-1:].isspace()):
            while i < len(body) and body[i] != "\n":
                i += 1
            continue
        elif c == "\n":
            flush()
            line += 1
        elif c in ";|&":
            flush()
            while i + 1 < len(body) and body[i + 1] in "|&":
                i += 1
        else:
            current.append(c)
        i += 1
    if quote:
        raise ValueError(f"unclosed {quote} quote in a shell block starting {body[:60]!r}")
    flush()
    return commands


def doc_commands() -> list[Command]:
    commands = []
    for path in DOC_FILES:
        if not path.exists():
            continue
        for first_line, body in shell_blocks(path.read_text(encoding="utf-8")):
            try:
                split = split_commands(body)
            except ValueError as err:
                raise ValueError(f"{path.relative_to(REPO)}: block at line {first_line}: {err}") from None
            for offset, text in split:
                commands.append(Command(path, first_line + offset, tuple(shlex.split(text))))
    return commands


def program(words: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """("culturesafe" | "lm_eval", its arguments) for a command we check, else None."""
    words = list(words)
    while words and ASSIGNMENT.match(words[0]):
        words.pop(0)  # VAR=value before the command
    if not words:
        return None
    if words[0] == "culturesafe":
        return "culturesafe", words[1:]
    if words[0] in ("lm_eval", "lm-eval"):
        return "lm_eval", words[1:]
    if "-m" in words and words[0] in ("accelerate", "python", "python3") or words[0].endswith("/python"):
        at = words.index("-m") if "-m" in words else -1
        if at >= 0 and words[at + 1 : at + 2] == ["lm_eval"]:
            return "lm_eval", words[at + 2 :]
    return None


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return None


def _parse(parse, args: list[str]) -> str | None:
    """None when ``parse(args)`` accepts the arguments, else what argparse said."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parse(args)
    except SystemExit as exit_:
        if exit_.code:
            lines = err.getvalue().strip().splitlines()
            return lines[-1] if lines else f"exit status {exit_.code}"
    return None


def culturesafe_problems(args: list[str]) -> list[str]:
    """What is wrong with ``culturesafe ARGS`` for the real parser (empty: nothing)."""
    from culturesafe_ext.cli import build_parser

    root = build_parser()
    parser, allowed, chain, words = root, _options(root), ["culturesafe"], list(args)
    while (choices := _subcommands(parser)) is not None:
        name = next((w for w in words if not w.startswith("-")), None)
        if name not in choices:
            return [f"`{' '.join(chain)}` has no sub-command {name!r} (it has: {', '.join(choices)})"]
        words = words[words.index(name) + 1 :]
        parser, chain = choices[name], [*chain, name]
        allowed |= _options(parser)
    problems = [
        f"`{' '.join(chain)}` has no option {w.split('=')[0]!r}"
        for w in words
        if w.startswith("-") and w != "-" and not _is_number(w) and w.split("=")[0] not in allowed
    ]
    error = _parse(root.parse_args, args)
    return problems + ([f"the parser refuses it: {error}"] if error else [])


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def our_task_names() -> set[str]:
    """Every task and group name our task YAMLs define (their ``!function`` tags are not evaluated)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    names: set[str] = set()
    for path in (REPO / "lm_eval_tasks").rglob("*"):
        if path.is_file() and (path.suffix == ".yaml" or path.name.endswith("_yaml")):
            config = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader) or {}
            for key in ("task", "group", "tag"):
                value = config.get(key)
                names.update([value] if isinstance(value, str) else value or [])
    return names


def model_names() -> set[str]:
    """lm-eval's built-in model names and the ones our package registers through its entry points."""
    from lm_eval.models import MODEL_MAPPING

    return set(MODEL_MAPPING) | {ep.name for ep in entry_points(group="lm_eval.models")}


def _value(words: list[str], flag: str) -> str | None:
    for i, w in enumerate(words):
        if w == flag and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(flag + "="):
            return w.split("=", 1)[1]
    return None


def lm_eval_problems(args: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What is wrong with ``lm_eval ARGS`` for lm-eval's own CLI and our tasks (empty: nothing)."""
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    run = _subcommands(cli._parser)["run"]
    words = args[1:] if args[:1] == ["run"] else list(args)
    problems = [
        f"`lm_eval run` has no option {w.split('=')[0]!r}"
        for w in words
        if w.startswith("-") and not _is_number(w) and w.split("=")[0] not in _options(run)
    ]

    def parse(argv: list[str]) -> None:
        monkeypatch.setattr(sys, "argv", ["lm_eval", *argv])
        cli.parse_args()  # the entry point's own parse, with its "run" inserted when no command is named

    error = _parse(parse, list(args))
    if error:
        problems.append(f"lm-eval's parser refuses it: {error}")
    model = _value(words, "--model")
    if model is not None and model not in model_names():
        problems.append(f"no lm-eval model is registered as {model!r}")
    tasks = _value(words, "--tasks")
    if tasks is not None and _value(words, "--include_path") is None:
        unknown = [t for t in tasks.split(",") if t not in our_task_names()]
        if unknown:
            problems.append(f"no task or group of ours is named {', '.join(unknown)}")
    return problems


COMMANDS = doc_commands()
CHECKED = [c for c in COMMANDS if program(c.words)]


def test_the_docs_show_commands_of_both_tools():
    names = {program(c.words)[0] for c in CHECKED}
    assert names == {"culturesafe", "lm_eval"}, f"found only {names} in {len(COMMANDS)} commands"
    readme = [c for c in CHECKED if c.path.name == "README.md"]
    assert {program(c.words)[0] for c in readme} == {"culturesafe", "lm_eval"}


@pytest.mark.parametrize("command", CHECKED, ids=str)
def test_documented_command_is_accepted(command: Command, monkeypatch: pytest.MonkeyPatch):
    name, args = program(command.words)
    problems = culturesafe_problems(args) if name == "culturesafe" else lm_eval_problems(args, monkeypatch)
    assert not problems, f"{command}\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["no-such-command"], "has no sub-command 'no-such-command'"),
        (["build", "nowhere", "--out", "x"], "`culturesafe build` has no sub-command 'nowhere'"),
        (["demo", "--no-such-flag"], "`culturesafe demo` has no option '--no-such-flag'"),
        (["demo", "--lim", "4"], "`culturesafe demo` has no option '--lim'"),  # argparse alone would accept it
        (["build", "culturax", "--source", "x", "--out", "y", "--threshold", "ten"], "the parser refuses it"),
        (["build", "adaculturesafe", "--source", "x"], "the parser refuses it"),  # --out is required
    ],
)
def test_a_wrong_culturesafe_command_is_caught(args: list[str], expected: str):
    assert any(expected in p for p in culturesafe_problems(args)), culturesafe_problems(args)


def test_a_right_culturesafe_command_passes():
    assert culturesafe_problems(["demo", "--limit", "20", "--no-safety"]) == []


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "hf", "--tasks", "adaculturesafe", "--no_such_flag"], "has no option '--no_such_flag'"),
        (["--model", "no-such-model", "--tasks", "adaculturesafe"], "no lm-eval model is registered"),
        (["--model", "hf", "--tasks", "adaculturesafe_knowledge_atlantis"], "adaculturesafe_knowledge_atlantis"),
        (["--model", "hf", "--tasks", "adaculturesafe", "--limit"], "lm-eval's parser refuses it"),
    ],
)
def test_a_wrong_lm_eval_command_is_caught(args: list[str], expected: str, monkeypatch: pytest.MonkeyPatch):
    assert any(expected in p for p in lm_eval_problems(args, monkeypatch)), lm_eval_problems(args, monkeypatch)


def test_a_right_lm_eval_command_passes(monkeypatch: pytest.MonkeyPatch):
    args = ["--model", "hf-probe", "--tasks", "adaculturesafe_safety,culturax", "--apply_chat_template"]
    assert lm_eval_problems(args, monkeypatch) == []
    mine = ["run", "--model", "hf", "--tasks", "mine_x", "--include_path", "./mine"]
    assert lm_eval_problems(mine, monkeypatch) == []


def test_commands_are_split_as_a_shell_would():
    body = (
        "# a comment, isn't it\n"
        "culturesafe analyze report a/ \\\n  --out r/   # trailing\n"
        'lm_eval --metadata \'{"judge": {\n  "backend": "none"}}\' --tasks x && culturesafe demo | tee log\n'
    )
    texts = [shlex.split(t) for _, t in split_commands(body)]
    assert texts == [
        ["culturesafe", "analyze", "report", "a/", "--out", "r/"],
        ["lm_eval", "--metadata", '{"judge": {\n  "backend": "none"}}', "--tasks", "x"],
        ["culturesafe", "demo"],
        ["tee", "log"],
    ]


def _leaves(parser: argparse.ArgumentParser, chain: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """Every runnable command of a parser tree, by its words (``"judge rejudge"``); hidden parsers included."""
    choices = _subcommands(parser)
    if choices is None:
        return {" ".join(chain): parser}
    leaves: dict[str, argparse.ArgumentParser] = {}
    for name, sub in choices.items():
        leaves.update(_leaves(sub, (*chain, name)))
    return leaves


def cli_reference_rows() -> dict[str, set[str]]:
    """The "options of each command" table of docs/cli.md: command words -> the options its row names."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("## The options of each command", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        command, options = (cell.strip() for cell in line.strip("|").split("|", 1))
        rows[command.strip("`")] = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", options))
    return rows


def test_the_cli_reference_lists_every_command_with_exactly_its_options():
    from culturesafe_ext.cli import build_parser

    leaves = _leaves(build_parser())
    rows = cli_reference_rows()
    assert set(rows) == set(leaves), (
        f"docs/cli.md lacks {sorted(set(leaves) - set(rows))}; names commands that do not exist: "
        f"{sorted(set(rows) - set(leaves))}"
    )
    for command, listed in rows.items():
        options = {o for o in _options(leaves[command]) if o.startswith("--") and o != "--help"}
        if command == "generate culturax":  # its row says "as above": the shared options of generate adaculturesafe
            listed |= rows["generate adaculturesafe"] & options
        assert listed == options, (
            f"docs/cli.md, `{command}`: not options: {sorted(listed - options)}; missing: {sorted(options - listed)}"
        )
