"""The stacks file, typed inputs, the one request builder and workspace ownership (no servers)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.workspaces import FileWorkspaceRecords, WorkspaceActivities, claim_refusal
from bot.grammar import GrammarError, parse_args, parse_text
from stacks.model import InputSpec, parse_duration
from stacks.registry import BUILTIN, StacksFileError, load_stacks
from stacks.requests import RequestError, RunOptions, build_destroy_request, build_request
from workflows.models import Actor, ClaimInput, DeprovisionRequest, ProvisionRequest
from workflows.scenarios import SCENARIOS

ALICE = Actor(id="U0ALICE", name="alice", kind="slack")
BOB = Actor(id="U0BOB", name="bob", kind="slack")


def write_stack(tmp_path: Path, body: str, *, with_folder: bool = True) -> Path:
    if with_folder:
        folder = tmp_path / "web"
        folder.mkdir(exist_ok=True)
        (folder / "main.tf").write_text('output "size" { value = var.size }\n')
    path = tmp_path / "stacks.yaml"
    path.write_text(textwrap.dedent(body))
    return path


WEB = """\
    stacks:
      web:
        description: a web tier
        source: ./web
        variables: {region: eu}
        secrets: [WEB_TOKEN]
        inputs:
          size: {type: number, min: 1, max: 10, default: 2}
          env: {type: string, choices: [dev, prod]}
          debug: {type: bool, default: false}
        permissions:
          run: [U0ALICE, S0DEVS]
          approve: [U0BOB]
        approvals: 2
        auto_apply: false
        ttl: {default: 1h, max: 2d}
    """


def test_the_nine_scenarios_are_built_in_stacks() -> None:
    assert BUILTIN.names() == list(SCENARIOS)
    stack = BUILTIN.get("human-in-the-loop-signal")
    assert stack.builtin and stack.source == "local_admin_user"
    assert stack.approval_channel == "signal"
    assert BUILTIN.get("happy-path").inputs["retention_days"].default == 7


def test_a_stacks_file_adds_to_the_builtin_stacks(tmp_path: Path) -> None:
    stacks = load_stacks(write_stack(tmp_path, WEB))
    assert stacks.names()[: len(SCENARIOS)] == list(SCENARIOS)
    web = stacks.get("web")
    assert web.source == str((tmp_path / "web").resolve())
    assert web.ttl.default == 3600 and web.ttl.max == 2 * 86400
    assert web.inputs["size"].required is False and web.inputs["env"].required is True


def test_builtin_false_hides_the_builtin_stacks(tmp_path: Path) -> None:
    stacks = load_stacks(write_stack(tmp_path, WEB.rstrip(" ") + "    builtin: false\n"))
    assert stacks.names() == ["web"]


def test_every_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_stack(
        tmp_path,
        """\
        stacks:
          web:
            source: ./nowhere
          bad:
            source: ./web
            inputs:
              size: {type: number, min: 5, max: 2}
            permissions:
              run: [bob]
            colour: blue
          happy-path:
            source: ./web
          status:
            source: ./web
        """,
    )
    with pytest.raises(StacksFileError) as err:
        load_stacks(path)
    errors = err.value.errors
    assert f"{path}:3: stacks.web.source: folder './nowhere' does not exist" in errors[0]
    joined = "\n".join(errors)
    assert f"{path}:7: stacks.bad.inputs.size: min 5 is above max 2" in joined
    assert f"{path}:9: stacks.bad.permissions.run: 'bob' is not a Slack user id" in joined
    assert f"{path}:10: stacks.bad.colour: unknown setting" in joined
    assert f"{path}:11: stacks.happy-path: is a built-in stack" in joined
    assert f"{path}:13: stacks.status: is a command word" in joined
    assert len(errors) == 6


def test_yaml_errors_and_missing_files_are_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("stacks:\n  web: [unclosed\n")
    with pytest.raises(StacksFileError) as err:
        load_stacks(broken)
    assert err.value.errors[0].startswith(f"{broken}:") and "not valid YAML" in err.value.errors[0]
    with pytest.raises(StacksFileError) as err:
        load_stacks(tmp_path / "absent.yaml")
    assert "cannot read the stacks file" in err.value.errors[0]


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write_stack(tmp_path, "stacks:\n  web:\n    source: ./web\n  web:\n    source: ./web\n")
    with pytest.raises(StacksFileError) as err:
        load_stacks(path)
    assert any("stacks.web: appears twice (line 4)" in e for e in err.value.errors)


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (InputSpec(type="number", min=1, max=10), "3", 3),
        (InputSpec(type="number"), "2.5", 2.5),
        (InputSpec(type="bool"), "yes", True),
        (InputSpec(type="string", pattern="[a-z]+"), "abc", "abc"),
        (InputSpec(type="string", choices=["dev", "prod"]), "prod", "prod"),
    ],
)
def test_inputs_are_typed(spec: InputSpec, raw: str, expected: object) -> None:
    assert spec.coerce(raw) == expected


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (InputSpec(type="number", min=1, max=10), "11", "out of range: a number from 1 to 10"),
        (InputSpec(type="number", min=1, max=10), "nan", "is not a number from 1 to 10"),
        (InputSpec(type="number"), "1e999", "is not a number"),
        (InputSpec(type="number"), "9" * 41, "too long"),
        (InputSpec(type="bool"), "maybe", "is not true or false"),
        (InputSpec(type="string", pattern="[a-z]+"), "ABC", "text matching [a-z]+"),
        (InputSpec(type="string", choices=["dev", "prod"]), "qa", "one of dev, prod"),
        (InputSpec(type="string"), "x" * 300, "at most 256 characters"),
        (InputSpec(type="string"), "a\ud800", "lone surrogates"),
    ],
)
def test_bad_input_values_say_what_is_allowed(spec: InputSpec, raw: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        spec.coerce(raw)
    assert message in str(err.value)


def test_durations() -> None:
    assert [parse_duration(v) for v in (90, "90s", "15m", "2h", "7d")] == [
        90,
        90,
        900,
        7200,
        604800,
    ]
    for bad in ("", "1w", "-5", True, 0):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_one_grammar_for_stacks() -> None:
    known = [*BUILTIN.names(), "web"]
    command = parse_text(
        "web --var size=3 --var note=two words env=prod --workspace w1 --owner S0DEVS", known
    )
    assert command.verb == "run" and command.stack == "web" and not command.plan_only
    assert command.variables == {"size": "3", "note": "two words", "env": "prod"}
    assert command.owners == ["S0DEVS"] and command.workspace == "w1"
    assert parse_args(["plan", "web", "--var", "size=1"], known).plan_only
    assert parse_text("approve w1 --reason looks fine to me").reason == "looks fine to me"
    assert parse_text("deny w1 --reason too big").reason == "too big"
    assert parse_text("stacks --json").json
    assert parse_text("destroy --stack web --prefix p", known).scenario == "web"
    for text, problem in [
        ("web", "unknown command or stack 'web'"),
        ("run web", "unknown stack 'web'"),
        ("web --var =3", "--var takes NAME=VALUE"),
        ("web --var a=1 --var a=2", "--var a is given twice"),
        ("happy-path --pace 61", "between 0 and 60 seconds"),
    ]:
        with pytest.raises(GrammarError) as err:
            parse_text(text, known if "web --var" in text else None)
        assert problem in str(err.value), text


def options(stacks, **overrides) -> RunOptions:
    base = dict(scenario="web", prefix="alice", requester=ALICE, stacks=stacks)
    base.update(overrides)
    return RunOptions(**base)


def test_a_stack_request_carries_its_rules(tmp_path: Path) -> None:
    stacks = load_stacks(write_stack(tmp_path, WEB))
    request = build_request(options(stacks, variables={"env": "prod", "size": "4"}))
    assert isinstance(request, ProvisionRequest)
    assert request.workspace == "alice-web" and request.stack == "web"
    assert request.variables == {"region": "eu", "size": 4, "env": "prod", "debug": False}
    assert request.inputs == {"size": 4, "env": "prod", "debug": False}
    assert "WEB_TOKEN" in request.env_passthrough
    assert request.required_approvals == 2 and request.auto_apply is False
    assert request.ttl_seconds == 3600 and request.owners == ["U0ALICE"]
    assert request.tf_directory == str((tmp_path / "web").resolve())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variables": {"env": "prod", "size": "11"}}, "--var size: '11' is out of range"),
        ({"variables": {"env": "prod", "colour": "x"}}, "stack web has no input 'colour'"),
        ({"variables": {}}, "stack web needs --var env=… (one of dev, prod)"),
        ({"variables": {"env": "prod"}, "ttl_seconds": 3 * 86400}, "allows at most 172800"),
        ({"variables": {"env": "prod"}, "pace_seconds": 61.0}, "--pace must be between 0"),
        ({"variables": {"env": "prod"}, "owners": ("bob",)}, "--owner 'bob' is not a Slack"),
        ({"variables": {"env": "prod"}, "workspace": "../etc"}, "workspace '../etc' is not"),
        ({"scenario": "nope"}, "unknown stack 'nope'"),
    ],
)
def test_bad_requests_are_refused_before_anything_starts(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    stacks = load_stacks(write_stack(tmp_path, WEB))
    with pytest.raises(RequestError) as err:
        build_request(options(stacks, **overrides))
    assert message in str(err.value)


def test_builtin_namespaces_are_named_after_the_workspace() -> None:
    request = build_request(
        RunOptions(scenario="happy-path", prefix="bob", workspace="alice-happy-path")
    )
    assert request.variables["workspace"] == "alice-happy-path"
    assert request.variables["prefix"] == "bob" and request.stack == "happy-path"
    chosen = build_request(
        RunOptions(scenario="happy-path", prefix="a", variables={"retention_days": "30"})
    )
    assert chosen.variables["retention_days"] == 30
    with pytest.raises(RequestError, match="ttl 31536000: stack ephemeral allows at most"):
        build_request(RunOptions(scenario="ephemeral", prefix="a", ttl_seconds=365 * 86400))


def test_destroy_requests() -> None:
    bare = build_destroy_request("alice-happy-path", scenario_name=None, options=options(BUILTIN))
    assert isinstance(bare, DeprovisionRequest) and bare.stack is None
    named = build_destroy_request(
        "alice-happy-path", scenario_name="happy-path", options=options(BUILTIN)
    )
    assert named.stack == "happy-path" and named.tf_directory == "local_namespace"


def claim(requester: Actor = ALICE, **overrides) -> ClaimInput:
    base = dict(workspace="w1", stack="web", requester=requester, owners=[requester.id])
    base.update(overrides)
    return ClaimInput(**base)


def test_claims(tmp_path: Path) -> None:
    env = ActivityEnvironment()
    acts = WorkspaceActivities(FileWorkspaceRecords(tmp_path))

    def run(c: ClaimInput):
        return asyncio.run(env.run(acts.claim_workspace, c))

    record = run(claim())
    assert record.owners == ["U0ALICE"] and record.stack == "web"
    assert run(claim()).owners == ["U0ALICE"]  # the owner again: fine, unchanged
    refusals = {
        "another owner": claim(BOB),
        "another stack": claim(stack="happy-path"),
        "destroy by a stranger": claim(BOB, destroy=True),
    }
    for label, c in refusals.items():
        with pytest.raises(ApplicationError) as err:
            run(c)
        assert err.value.type == "WorkspaceRefused" and err.value.non_retryable, label
    assert "belongs to U0ALICE" in claim_refusal(record, claim(BOB))
    assert "belongs to stack web" in claim_refusal(record, claim(stack="happy-path"))
    # Destroy: owners, approvers and the stack's destroyers; groups count.
    assert claim_refusal(record, claim(BOB, destroy=True, approvers=["U0BOB"])) is None
    in_group = Actor(id="U0CAROL", kind="slack", groups=["S0OPS"])
    assert claim_refusal(record, claim(in_group, destroy=True, destroyers=["S0OPS"])) is None
    # Operators act on any workspace of the right stack, never on another stack's.
    operator = Actor(id="cli:root", kind="cli")
    assert claim_refusal(record, claim(operator)) is None
    assert claim_refusal(record, claim(operator, stack="happy-path")) is not None
    # A destroy of a workspace nobody claimed records nothing.
    run(claim(workspace="w2", destroy=True))
    assert not (tmp_path / "w2" / "owner.json").exists()
    with pytest.raises(ApplicationError, match="escapes"):
        FileWorkspaceRecords(tmp_path).read("..")
