"""One command grammar for `/provision …` in Slack and the `provision` CLI: one parser, one help."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field

from stacks.registry import BUILTIN, Stacks

VERBS = (
    "run",
    "plan",
    "stacks",
    "status",
    "approve",
    "deny",
    "replan",
    "destroy",
    "list",
    "help",
)
_VAR_START = re.compile(r"^([a-z_][a-z0-9_]{0,63})=(.*)$", re.S)
MAX_VARS = 50


class GrammarError(ValueError):
    """A command that does not parse; the message names the problem."""


@dataclass
class Command:
    verb: str
    scenario: str | None = None
    prefix: str | None = None
    ttl: int | None = None
    workspace: str | None = None
    pace: float = 0.0
    wait: bool = False
    json: bool = False
    target: str | None = None
    reason: str | None = None
    status: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    owners: list[str] = field(default_factory=list)
    plan_only: bool = False

    @property
    def stack(self) -> str | None:
        """The stack a run or destroy names (the original demo called stacks scenarios)."""
        return self.scenario


def _stack_lines(stacks: Stacks) -> str:
    width = max(len(name) for name in stacks.names())
    return "\n".join(f"  {s.name:<{width}}  {s.description}" for s in stacks)


def _verb_lines() -> str:
    lines = []
    for verb in VERBS:
        usage, summary = _VERB_TEXT[verb]
        head = usage if verb == "run" else f"{verb} {usage}".rstrip()
        if len(head) <= 26:
            lines.append(f"  {head:<26} {summary}")
        else:
            lines += [f"  {head}", f"  {'':<26} {summary}"]
        if verb == "run":
            lines.append(
                f"  {'':<26} (in a terminal: provision run <stack> …, plus --wait, --json)"
            )
    return "\n".join(lines)


def help_text(stacks: Stacks = BUILTIN) -> str:
    return f"""Usage: /provision <command>   (in a terminal: provision <command>)

{_verb_lines()}

Stacks:
{_stack_lines(stacks)}

Options: --var sets one of the stack's inputs, --prefix names the workspace (default: your
user name), --ttl destroys an ephemeral run after S seconds, --pace slows each step by S
seconds for live demos (at most 60)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit
        raise GrammarError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:
        raise GrammarError(message or "invalid command")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _pace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError("must be between 0 and 60 seconds")
    return value


def _build() -> argparse.ArgumentParser:
    parser = _Parser(prog="provision", add_help=False)
    sub = parser.add_subparsers(dest="verb")
    sub.required = True

    def output_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", action="store_true")
        p.add_argument("--json", action="store_true")

    for verb in ("run", "plan"):
        run = sub.add_parser(verb, add_help=False)
        run.add_argument("scenario")
        run.add_argument("--var", dest="variables", action="append", nargs="+", default=[])
        run.add_argument("--owner", dest="owners", action="append", default=[])
        run.add_argument("--prefix")
        run.add_argument("--ttl", type=_positive_int)
        run.add_argument("--workspace")
        run.add_argument("--pace", type=_pace, default=0.0)
        output_flags(run)

    stacks = sub.add_parser("stacks", add_help=False)
    stacks.add_argument("target", nargs="?", choices=["check"])
    stacks.add_argument("--json", action="store_true")

    status = sub.add_parser("status", add_help=False)
    status.add_argument("target")
    status.add_argument("--json", action="store_true")

    approve = sub.add_parser("approve", add_help=False)
    approve.add_argument("target")
    approve.add_argument("--reason", nargs="+", required=True)
    approve.add_argument("--json", action="store_true")

    deny = sub.add_parser("deny", add_help=False)
    deny.add_argument("target")
    deny.add_argument("--reason", nargs="*", default=[])
    deny.add_argument("--json", action="store_true")

    replan = sub.add_parser("replan", add_help=False)
    replan.add_argument("target")
    replan.add_argument("--json", action="store_true")

    destroy = sub.add_parser("destroy", add_help=False)
    destroy.add_argument("target", nargs="?")
    destroy.add_argument("--scenario", "--stack", dest="scenario")
    destroy.add_argument("--prefix")
    destroy.add_argument("--pace", type=_pace, default=0.0)
    output_flags(destroy)

    listing = sub.add_parser("list", add_help=False)
    listing.add_argument("--status")
    listing.add_argument("--json", action="store_true")

    sub.add_parser("help", add_help=False)
    return parser


_PARSER = _build()

# Options that only mean something in a terminal: Slack answers at once and in its own way.
TERMINAL_ONLY_OPTIONS = ("--wait", "--json")


@dataclass(frozen=True)
class VerbHelp:
    """One verb of the grammar as data (for completions and other front ends than HELP)."""

    verb: str
    usage: str
    summary: str
    # Every option the parser takes for this verb, in the parser's order.
    options: tuple[str, ...]

    @property
    def chat_options(self) -> tuple[str, ...]:
        """The options that mean something in a chat command."""
        return tuple(o for o in self.options if o not in TERMINAL_ONLY_OPTIONS)


_VERB_TEXT = {
    "run": (
        "<stack> [--var NAME=VALUE]… [--prefix P] [--ttl S] [--workspace W] [--owner ID]… "
        "[--pace S]",
        "plan, check policy, ask where needed, apply",
    ),
    "plan": ("<stack> […]", "plan and check policy only; the run offers Apply"),
    "stacks": ("", "the stacks you can run, with their inputs"),
    "status": ("<id>", "the state of a run (workflow id or workspace)"),
    "list": ("[--status S]", "recent runs, optionally only those in one state"),
    "approve": ("<id> --reason R", "approve a waiting run"),
    "deny": ("<id> [--reason R]", "deny a waiting run"),
    "replan": ("<id>", "throw the plan away and plan again"),
    "destroy": ("[<workspace> | --stack S --prefix P]", "destroy what a workspace applied"),
    "help": ("", "this text"),
}


def _parser_options(verb: str) -> tuple[str, ...]:
    subparsers = next(a for a in _PARSER._actions if isinstance(a, argparse._SubParsersAction))
    parser = subparsers.choices[verb]
    return tuple(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    )


def verb_help() -> list[VerbHelp]:
    """Every verb, in VERBS order, with its usage, a one-line summary and its options (read
    from the parser itself, so they cannot drift from what parses)."""
    return [VerbHelp(verb, *_VERB_TEXT[verb], _parser_options(verb)) for verb in VERBS]


def _variables(groups: list[list[str]]) -> dict[str, str]:
    """`--var a=1 --var note=two words b=2` → {a: 1, note: "two words", b: 2}: a word that is not
    `name=…` continues the value before it, so values with spaces work unquoted."""
    variables: dict[str, str] = {}
    for group in groups:
        current: str | None = None
        for word in group:
            match = _VAR_START.match(word)
            if match:
                current = match.group(1)
                if current in variables:
                    raise GrammarError(f"--var {current} is given twice")
                variables[current] = match.group(2)
            elif current is None:
                raise GrammarError(f"--var takes NAME=VALUE, not {word!r}")
            else:
                variables[current] += " " + word
    if len(variables) > MAX_VARS:
        raise GrammarError(f"at most {MAX_VARS} --var values")
    return variables


def _unknown_stack(name: str, known: Collection[str]) -> GrammarError:
    runnable = ", ".join(n for n in known if n != "destroy")
    return GrammarError(f"unknown stack {name!r}; stacks: {runnable} (see `stacks`)")


def parse_args(argv: list[str], stacks: Collection[str] | None = None) -> Command:
    """Parse tokens. A bare stack name means `run <stack>` (the Slack form)."""
    known = BUILTIN.names() if stacks is None else list(stacks)
    tokens = list(argv)
    if not tokens or tokens[0] in ("-h", "--help"):
        return Command(verb="help")
    if tokens[0] in known and tokens[0] != "destroy":
        tokens.insert(0, "run")
    if tokens[0] not in VERBS:
        raise GrammarError(
            f"unknown command or stack {tokens[0]!r}; commands: {', '.join(VERBS)}; "
            f"stacks: {', '.join(s for s in known if s != 'destroy')}"
        )
    if any(t in ("-h", "--help") for t in tokens):
        return Command(verb="help")
    ns = _PARSER.parse_args(tokens)
    values = vars(ns)
    if ns.verb in ("run", "plan"):
        if ns.scenario not in known or ns.scenario == "destroy" and ns.verb == "plan":
            raise _unknown_stack(ns.scenario, known)
        values["variables"] = _variables(ns.variables)
        values["plan_only"] = ns.verb == "plan"
        values["verb"] = "run"
    if isinstance(values.get("reason"), list):
        values["reason"] = " ".join(values["reason"])
    if ns.verb == "destroy" and ns.target and ns.scenario:
        raise GrammarError("destroy takes a workspace or --stack/--prefix, not both")
    if ns.verb == "destroy" and ns.scenario and ns.scenario not in known:
        raise _unknown_stack(ns.scenario, known)
    return Command(**{k: v for k, v in values.items() if k in Command.__dataclass_fields__})


def parse_text(text: str, stacks: Collection[str] | None = None) -> Command:
    """Parse the text of a slash command."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise GrammarError(f"could not read the command: {exc}") from None
    return parse_args(tokens, stacks)


HELP = help_text()
