"""One command grammar for `/provision …` in Slack and the `provision` CLI: one parser, one help."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

from workflows.scenarios import SCENARIOS

VERBS = ("run", "status", "approve", "deny", "replan", "destroy", "list", "help")


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


def _scenario_lines() -> str:
    width = max(len(name) for name in SCENARIOS)
    return "\n".join(f"  {s.name:<{width}}  {s.summary}" for s in SCENARIOS.values())


HELP = f"""Usage: /provision <command>   (in a terminal: provision <command>)

  <scenario> [--prefix P] [--ttl S] [--workspace W] [--pace S]
                             plan, check policy, ask where needed, apply
                             (in a terminal: provision run <scenario> …, plus --wait, --json)
  status <id>                the state of a run (workflow id or workspace)
  list [--status S]          recent runs, optionally only those in one state
  approve <id> --reason R    approve a waiting run
  deny <id> [--reason R]     deny a waiting run
  replan <id>                throw the plan away and plan again
  destroy [<workspace> | --scenario S --prefix P]
                             destroy what a workspace applied
  help                       this text

Scenarios:
{_scenario_lines()}

Options: --prefix names the resources (default: your user name), --ttl destroys an
ephemeral run after S seconds, --pace slows each step by S seconds for live demos."""


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
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError("must be between 0 and 600 seconds")
    return value


def _build() -> argparse.ArgumentParser:
    parser = _Parser(prog="provision", add_help=False)
    sub = parser.add_subparsers(dest="verb")
    sub.required = True

    def output_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", action="store_true")
        p.add_argument("--json", action="store_true")

    run = sub.add_parser("run", add_help=False)
    run.add_argument("scenario")
    run.add_argument("--prefix")
    run.add_argument("--ttl", type=_positive_int)
    run.add_argument("--workspace")
    run.add_argument("--pace", type=_pace, default=0.0)
    output_flags(run)

    status = sub.add_parser("status", add_help=False)
    status.add_argument("target")
    status.add_argument("--json", action="store_true")

    approve = sub.add_parser("approve", add_help=False)
    approve.add_argument("target")
    approve.add_argument("--reason", required=True)
    approve.add_argument("--json", action="store_true")

    deny = sub.add_parser("deny", add_help=False)
    deny.add_argument("target")
    deny.add_argument("--reason", default="")
    deny.add_argument("--json", action="store_true")

    replan = sub.add_parser("replan", add_help=False)
    replan.add_argument("target")
    replan.add_argument("--json", action="store_true")

    destroy = sub.add_parser("destroy", add_help=False)
    destroy.add_argument("target", nargs="?")
    destroy.add_argument("--scenario")
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
        "<scenario> [--prefix P] [--ttl S] [--workspace W] [--pace S]",
        "plan, check policy, ask where needed, apply",
    ),
    "status": ("<id>", "the state of a run (workflow id or workspace)"),
    "list": ("[--status S]", "recent runs, optionally only those in one state"),
    "approve": ("<id> --reason R", "approve a waiting run"),
    "deny": ("<id> [--reason R]", "deny a waiting run"),
    "replan": ("<id>", "throw the plan away and plan again"),
    "destroy": ("[<workspace> | --scenario S --prefix P]", "destroy what a workspace applied"),
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


def parse_args(argv: list[str]) -> Command:
    """Parse tokens. A bare scenario name means `run <scenario>` (the Slack form)."""
    tokens = list(argv)
    if not tokens or tokens[0] in ("-h", "--help"):
        return Command(verb="help")
    if tokens[0] in SCENARIOS and tokens[0] != "destroy":
        tokens.insert(0, "run")
    if tokens[0] not in VERBS:
        raise GrammarError(
            f"unknown command or scenario {tokens[0]!r}; commands: {', '.join(VERBS)}; "
            f"scenarios: {', '.join(s for s in SCENARIOS if s != 'destroy')}"
        )
    if any(t in ("-h", "--help") for t in tokens):
        return Command(verb="help")
    ns = _PARSER.parse_args(tokens)
    if ns.verb == "run" and ns.scenario not in SCENARIOS:
        raise GrammarError(
            f"unknown scenario {ns.scenario!r}; choose one of: {', '.join(SCENARIOS)}"
        )
    if ns.verb == "destroy" and ns.target and ns.scenario:
        raise GrammarError("destroy takes a workspace or --scenario/--prefix, not both")
    if ns.verb == "destroy" and ns.scenario and ns.scenario not in SCENARIOS:
        raise GrammarError(f"unknown scenario {ns.scenario!r}")
    return Command(**{k: v for k, v in vars(ns).items() if k in Command.__dataclass_fields__})


def parse_text(text: str) -> Command:
    """Parse the text of a slash command."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise GrammarError(f"could not read the command: {exc}") from None
    return parse_args(tokens)
