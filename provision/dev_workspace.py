"""The local Slack workspace of `provision dev`: the one product module that uses `localslack`.

It tells the workspace about this app (the `/provision` completions, from the grammar's verbs
and the scenario table) and casts its people: alice starts runs, alice and bob approve, carol
may not.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.grammar import VERBS, verb_help
from provision.dev_server import port_open
from provision.settings import ConfigurationError, Settings
from workflows.scenarios import SCENARIOS

if TYPE_CHECKING:
    from localslack import CommandHints, LocalSlack, SlackUser

log = logging.getLogger(__name__)

# The demo's approvers when PROVISION_SLACK_APPROVERS is not set: a user group of the cast.
APPROVERS_GROUP = "S0APPROVERS"
LOCAL_SLACK_APPROVERS = (APPROVERS_GROUP,)
# Messages of the local workspace are kept here, under the data folder, across restarts.
DATA_FILE_NAME = "local-slack.json"
NOT_INSTALLED = (
    "the local Slack workspace (package localslack) is not installed: run `make venv`, or "
    "`pip install -e ./localslack` from the repository; or set SLACK_BOT_TOKEN and "
    "SLACK_APP_TOKEN to use a real Slack"
)


def cast() -> tuple[list[SlackUser], dict[str, list[str]]]:
    """The demo's people and their approvers' group."""
    from localslack import SlackUser

    users = [
        SlackUser("U0ALICE", "alice", "Alice Anders"),
        SlackUser("U0BOB", "bob", "Bob Brown"),
        SlackUser("U0CAROL", "carol", "Carol Chen"),
    ]
    return users, {APPROVERS_GROUP: ["U0ALICE", "U0BOB"]}


def provision_command_hints() -> CommandHints:
    """Completions for `/provision`: the grammar's verbs and the scenario table, as data."""
    from localslack import CommandHints, Suggestion

    verbs = {v.verb: v for v in verb_help()}
    run_options = list(verbs["run"].chat_options)
    first = [
        Suggestion(name, scenario.summary, "scenario")
        for name, scenario in SCENARIOS.items()
        if name not in VERBS
    ]
    first += [Suggestion(verb, verbs[verb].summary, "verb") for verb in VERBS]
    per_word = {verb: list(verbs[verb].chat_options) for verb in VERBS}
    for name in SCENARIOS:
        if name not in VERBS:
            per_word[name] = run_options
    return CommandHints(
        command="/provision",
        description="Plan, policy-check, approve and apply Terraform changes",
        first=first,
        options={
            word: [Suggestion(option, "", "option") for option in opts]
            for word, opts in per_word.items()
        },
    )


def user_notes(users: list[SlackUser], groups: dict[str, list[str]], approvers: list[str]):
    """A line under each person's name: who starts runs (the first) and who may approve."""
    approving = {a for a in approvers if not a.startswith("S")}
    for group in approvers:
        approving |= set(groups.get(group, []))
    notes = {}
    for index, user in enumerate(u for u in users if not u.is_bot):
        role = "approver" if user.id in approving else "not an approver"
        # The first user is who a new page acts as: the one who starts runs in the demo.
        notes[user.id] = f"requester · {role}" if index == 0 else role
    return notes


async def start_local_slack(
    settings: Settings, data_file: Path | None = None
) -> tuple[LocalSlack, Settings]:
    """Without Slack tokens: serve a local Slack workspace (API, Socket Mode and the browser
    client on one port) and return it with the settings that point the bot and the worker's
    notifications at it. Approvers default to the demo's: alice and bob (S0APPROVERS), not carol.
    `data_file` keeps the workspace's messages across restarts (None: in memory).
    """
    try:
        from localslack import LocalSlack
    except ImportError:
        raise ConfigurationError(NOT_INSTALLED) from None

    if settings.local_slack_port and port_open("127.0.0.1", settings.local_slack_port):
        raise ConfigurationError(
            f"PROVISION_LOCAL_SLACK_PORT: port {settings.local_slack_port} is already in use"
        )
    if settings.slack_bot_token or settings.slack_app_token:
        log.warning(
            "only one of SLACK_BOT_TOKEN and SLACK_APP_TOKEN is set; the bot needs both, so it "
            "uses the local workspace instead"
        )
    users, groups = cast()
    approvers = settings.slack_approvers or list(LOCAL_SLACK_APPROVERS)
    slack = LocalSlack(
        port=settings.local_slack_port,
        users=users,
        usergroups=groups,
        commands=[provision_command_hints()],
        user_notes=user_notes(users, groups, approvers),
        data_file=data_file,
    )
    await slack.start()
    override = settings.model_copy(
        update={
            "slack_bot_token": SecretStr(slack.bot_token),
            "slack_app_token": SecretStr(slack.app_token),
            "slack_api_url": slack.api_url,
            "slack_approvers": approvers,
        }
    )
    return slack, override


def slack_banner(local_slack: LocalSlack | None, settings: Settings) -> str:
    if local_slack is None:
        return f"Slack:         the bot is connected to {settings.slack_api_url} (Socket Mode)"
    kept = f"; messages kept in {local_slack.data_file.path}" if local_slack.data_file else ""
    return (
        f"Slack:         {local_slack.url}  (a local workspace: open it in a browser, run "
        f"/provision human-in-the-loop-update as alice, approve as bob{kept})"
    )
