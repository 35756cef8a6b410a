"""The grammar's verbs as data (`verb_help()`): what front ends other than HELP build on, such as
the local Slack workspace's completions. It must say what the parser and HELP say."""

from __future__ import annotations

from bot.grammar import HELP, TERMINAL_ONLY_OPTIONS, VERBS, parse_args, verb_help
from provision.dev_workspace import provision_command_hints
from workflows.scenarios import SCENARIOS

SAMPLE = {"--prefix": "p", "--ttl": "60", "--workspace": "w", "--pace": "0", "--reason": "ok"}
SAMPLE |= {"--scenario": "happy-path", "--stack": "happy-path", "--status": "applied"}
SAMPLE |= {"--var": "retention_days=9", "--owner": "U0OWNER"}


def test_every_verb_in_order_with_the_summary_help_gives_it() -> None:
    verbs = verb_help()
    assert [v.verb for v in verbs] == list(VERBS)
    for verb in verbs:
        assert verb.summary in HELP, verb.verb


def test_every_option_listed_is_one_the_parser_takes() -> None:
    target = {"run": ["happy-path"], "status": ["x"], "approve": ["x"], "deny": ["x"]}
    target |= {"replan": ["x"], "destroy": [], "list": [], "help": []}
    target |= {"plan": ["happy-path"], "stacks": []}
    for verb in verb_help():
        for option in verb.options:
            argv = [verb.verb, *target[verb.verb], option]
            if option not in TERMINAL_ONLY_OPTIONS:
                argv.append(SAMPLE[option])
            if verb.verb == "approve" and option != "--reason":
                argv += ["--reason", "ok"]
            # `plan` is a run that stops before applying.
            assert parse_args(argv).verb == ("run" if verb.verb == "plan" else verb.verb), argv
        assert not set(verb.chat_options) & set(TERMINAL_ONLY_OPTIONS)


def test_the_local_workspace_completes_from_the_same_data() -> None:
    hints = provision_command_hints()
    options = {word: [s.value for s in suggestions] for word, suggestions in hints.options.items()}
    by_verb = {v.verb: v for v in verb_help()}
    assert options["approve"] == list(by_verb["approve"].chat_options) == ["--reason"]
    for name in SCENARIOS:
        if name not in VERBS:
            assert options[name] == list(by_verb["run"].chat_options)
