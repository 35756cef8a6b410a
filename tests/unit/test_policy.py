"""Rego policies over real terraform plans, the evaluator's error paths, and variable validation."""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from activities.policy import PolicyError, PolicyEvaluator, PolicySyntaxError
from workflows.models import PolicyLevel

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO_ROOT / "terraform" / "policies"
FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"
PLANS_DIR = FIXTURES_DIR / "plans"

# Loaded by path: tests/ is not a package, and a PyPI distribution is also called `fixtures`.
_spec = importlib.util.spec_from_file_location("make_plans", FIXTURES_DIR / "make_plans.py")
make_plans = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_plans)

HARD, SOFT, ADVISORY = PolicyLevel.HARD, PolicyLevel.SOFT, PolicyLevel.ADVISORY

# fixture -> (findings as (rule, level, resource) in report order, verdict)
EXPECTED = {
    "namespace_clean": ([], "pass"),
    "no_changes": ([], "pass"),
    "destroy_unprotected": (
        [("destructive_change", SOFT, "null_resource.namespace")],
        "needs_approval",
    ),
    "retention_0": ([("retention", HARD, "null_resource.namespace")], "blocked"),
    "retention_365": ([("retention", HARD, "null_resource.namespace")], "blocked"),
    "admin_grant": ([("namespace_admin", SOFT, "null_resource.admin_grant")], "needs_approval"),
    "account_owner": ([("account_owner", HARD, "null_resource.admin_grant")], "blocked"),
    "destroy_protected": (
        [
            ("destructive_change", SOFT, "null_resource.namespace"),
            ("protected_delete", SOFT, "null_resource.namespace"),
        ],
        "needs_approval",
    ),
    "replace_protected": (
        [
            ("destructive_change", SOFT, "null_resource.namespace"),
            ("protected_delete", SOFT, "null_resource.namespace"),
        ],
        "needs_approval",
    ),
    "many_changes": ([("change_count", ADVISORY, None)], "pass"),
    "tcloud_namespace": ([], "pass"),
    "tcloud_retention_365": (
        [("retention", HARD, "temporalcloud_namespace.namespace")],
        "blocked",
    ),
    "tcloud_admin_user": (
        [("namespace_admin", SOFT, "temporalcloud_user.namespace_admin")],
        "needs_approval",
    ),
    "tcloud_account_owner": (
        [
            ("account_owner", HARD, "temporalcloud_user.namespace_admin"),
            ("namespace_admin", SOFT, "temporalcloud_user.namespace_admin"),
        ],
        "blocked",
    ),
}


def load_plan(name: str) -> dict:
    return json.loads((PLANS_DIR / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def evaluator() -> PolicyEvaluator:
    return PolicyEvaluator(POLICY_DIR)


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target)
    return target


def test_every_fixture_is_covered() -> None:
    assert sorted(p.stem for p in PLANS_DIR.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings(evaluator: PolicyEvaluator, name: str) -> None:
    expected, verdict = EXPECTED[name]
    report = evaluator.evaluate(load_plan(name))
    assert [(f.rule, f.level, f.resource) for f in report.findings] == expected
    assert report.verdict == verdict
    for finding in report.findings:
        if finding.resource:
            assert finding.resource in finding.message


def test_destructive_change_names_each_resource_unless_the_run_asked_to_destroy(
    evaluator: PolicyEvaluator,
) -> None:
    replaced = evaluator.evaluate(load_plan("replace_protected"))
    (finding,) = [f for f in replaced.findings if f.rule == "destructive_change"]
    assert finding.message == "null_resource.namespace would be replaced"
    deleted = evaluator.evaluate(load_plan("destroy_unprotected"))
    assert deleted.findings[0].message == "null_resource.namespace would be deleted"
    asked = evaluator.evaluate({**load_plan("destroy_unprotected"), "provision": {"destroy": True}})
    assert asked.findings == [] and asked.verdict == "pass"
    # A destroy run still meets the rules about what it deletes.
    protected = evaluator.evaluate(
        {**load_plan("destroy_protected"), "provision": {"destroy": True}}
    )
    assert [f.rule for f in protected.findings] == ["protected_delete"]


def test_report_lists_policy_files(evaluator: PolicyEvaluator) -> None:
    report = evaluator.evaluate(load_plan("namespace_clean"))
    assert report.policies == sorted(p.name for p in POLICY_DIR.glob("*.rego"))
    assert {"account_owner.rego", "retention.rego", "change_count.rego"} <= set(report.policies)


def test_messages_carry_the_values_that_failed(evaluator: PolicyEvaluator) -> None:
    (retention,) = evaluator.evaluate(load_plan("retention_365")).findings
    assert "365" in retention.message
    (owner,) = evaluator.evaluate(load_plan("account_owner")).findings
    assert "admin@example.com" in owner.message


def test_tcloud_values_match_in_any_case(evaluator: PolicyEvaluator) -> None:
    plan = load_plan("tcloud_account_owner")
    user = plan["resource_changes"][1]["change"]["after"]
    user["account_access"] = "Owner"
    user["namespace_accesses"] = [{"permission": "Admin"}]
    assert [f.rule for f in evaluator.evaluate(plan).findings] == [
        "account_owner",
        "namespace_admin",
    ]


def test_max_changes_comes_from_config() -> None:
    strict = PolicyEvaluator(POLICY_DIR, {"max_changes": 1})
    report = strict.evaluate(load_plan("admin_grant"))
    assert [(f.rule, f.level) for f in report.findings] == [
        ("namespace_admin", SOFT),
        ("change_count", ADVISORY),
    ]
    assert report.verdict == "needs_approval"
    lenient = PolicyEvaluator(POLICY_DIR, {"max_changes": 50})
    assert lenient.evaluate(load_plan("many_changes")).findings == []


def test_retention_bounds_come_from_config() -> None:
    evaluator = PolicyEvaluator(POLICY_DIR, {"max_retention_days": 400})
    assert evaluator.evaluate(load_plan("retention_365")).findings == []
    assert [f.rule for f in evaluator.evaluate(load_plan("retention_0")).findings] == ["retention"]


def test_findings_sort_by_level_then_rule_then_resource(evaluator: PolicyEvaluator) -> None:
    plan = load_plan("tcloud_account_owner")
    plan["resource_changes"] = list(reversed(plan["resource_changes"]))
    merged = load_plan("account_owner")
    plan["resource_changes"] += merged["resource_changes"]
    report = evaluator.evaluate(plan)
    assert [(f.level, f.rule, f.resource) for f in report.findings] == [
        (HARD, "account_owner", "null_resource.admin_grant"),
        (HARD, "account_owner", "temporalcloud_user.namespace_admin"),
        (SOFT, "namespace_admin", "temporalcloud_user.namespace_admin"),
    ]


def test_one_evaluator_serves_many_plans(evaluator: PolicyEvaluator) -> None:
    first = [evaluator.evaluate(load_plan(name)) for name in sorted(EXPECTED)]
    again = [evaluator.evaluate(load_plan(name)) for name in sorted(EXPECTED)]
    assert first == again


def test_evaluation_is_fast(evaluator: PolicyEvaluator) -> None:
    plan = load_plan("admin_grant")
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        evaluator.evaluate(plan)
        timings.append(time.perf_counter() - start)
    # About 4 ms here; the bound only catches a return to recompiling on every call.
    assert statistics.median(timings) < 0.05


def test_new_rule_file_is_picked_up(policy_copy: Path) -> None:
    (policy_copy / "region_label.rego").write_text(
        """# A rule added by dropping a file in: no code change needed.
package provision.rules.region_label

import rego.v1

findings contains f if {
\tsome rc in input.resource_changes
\tdata.provision.plan.changing(rc)
\trc.change.after.triggers.region == "local"
\tf := {
\t\t"id": "region_label",
\t\t"level": "advisory",
\t\t"message": sprintf("%s uses the default region label", [rc.address]),
\t\t"resource": rc.address,
\t}
}
"""
    )
    report = PolicyEvaluator(policy_copy).evaluate(load_plan("namespace_clean"))
    assert "region_label.rego" in report.policies
    assert [(f.rule, f.level, f.resource) for f in report.findings] == [
        ("region_label", ADVISORY, "null_resource.namespace")
    ]
    assert report.verdict == "pass"


def test_parse_error_names_file_line_and_column(policy_copy: Path) -> None:
    broken = policy_copy / "broken.rego"
    broken.write_text(
        "# é: offsets are in bytes, so a multi-byte character must not shift the location\n"
        "package provision.rules.broken\n"
        "\n"
        "import rego.v1\n"
        "\n"
        "findings contains f if {\n"
        "\tf := input.a && input.b\n"
        "}\n"
    )
    with pytest.raises(PolicySyntaxError) as caught:
        PolicyEvaluator(policy_copy)
    error = caught.value
    assert error.file == str(broken)
    assert (error.line, error.column) == (7, 15)
    assert error.detail
    assert str(error) == f"{broken}:7:15: {error.detail}"
    assert "\n" not in str(error)


def test_unclosed_brace_is_a_syntax_error(policy_copy: Path) -> None:
    broken = policy_copy / "unclosed.rego"
    broken.write_text(
        "package provision.rules.unclosed\n\nimport rego.v1\n\nfindings contains f if {\n"
    )
    with pytest.raises(PolicySyntaxError) as caught:
        PolicyEvaluator(policy_copy)
    assert (caught.value.file, caught.value.line) == (str(broken), 5)


def test_compile_error_found_at_query_time_names_the_file(policy_copy: Path) -> None:
    # Wrong arity passes add_module in rego-cpp and only fails when a query runs.
    broken = policy_copy / "arity.rego"
    broken.write_text(
        "package provision.rules.arity\n\nimport rego.v1\n\n"
        "findings contains f if {\n\tf := count(1, 2)\n}\n"
    )
    with pytest.raises(PolicySyntaxError) as caught:
        PolicyEvaluator(policy_copy)
    assert caught.value.file == str(broken)
    assert caught.value.line is None
    assert "argument" in caught.value.detail
    assert str(caught.value).startswith(f"{broken}: ")


def test_compile_error_reached_only_by_some_plans_names_the_file(policy_copy: Path) -> None:
    # Arguments from the plan: the empty-plan probe at start-up never reaches the call.
    broken = policy_copy / "arity.rego"
    broken.write_text(
        "package provision.rules.arity\n\nimport rego.v1\n\n"
        "findings contains f if {\n\tsome rc in input.resource_changes\n"
        "\tf := count(rc.address, rc.type)\n}\n"
    )
    evaluator = PolicyEvaluator(policy_copy)
    assert evaluator.evaluate({"resource_changes": []}).findings == []
    with pytest.raises(PolicySyntaxError) as caught:
        evaluator.evaluate(load_plan("namespace_clean"))
    assert caught.value.file == str(broken)
    assert "argument" in caught.value.detail


def test_call_to_undefined_function_names_the_file(policy_copy: Path) -> None:
    # rego-cpp hands this one back as a "successful" result holding an error rendering.
    broken = policy_copy / "zz_undefined.rego"
    broken.write_text(
        "package provision.rules.zz_undefined\n\nimport rego.v1\n\n"
        "findings contains f if {\n\tsome rc in input.resource_changes\n"
        "\tdata.provision.plan.no_such_predicate(rc)\n\tf := rc.address\n}\n"
    )
    evaluator = PolicyEvaluator(policy_copy)
    with pytest.raises(PolicySyntaxError) as caught:
        evaluator.evaluate(load_plan("admin_grant"))
    assert caught.value.file == str(broken)
    assert "no_such_predicate" in caught.value.detail


def test_evaluation_error_is_a_policy_error_and_the_evaluator_survives(
    policy_copy: Path,
) -> None:
    # Two values for one complete rule is an error only for some inputs.
    (policy_copy / "conflict.rego").write_text(
        "package provision.rules.conflict\n\nimport rego.v1\n\n"
        "label := input.variables.region.value\n"
        "label := input.variables.prefix.value\n"
    )
    evaluator = PolicyEvaluator(policy_copy)
    plan = load_plan("namespace_clean")
    with pytest.raises(PolicyError, match="conflict"):
        evaluator.evaluate(plan)
    plan["variables"]["region"]["value"] = plan["variables"]["prefix"]["value"]
    assert evaluator.evaluate(plan).findings == []


def test_malformed_finding_is_a_policy_error(policy_copy: Path) -> None:
    (policy_copy / "bad_level.rego").write_text(
        "package provision.rules.bad_level\n\nimport rego.v1\n\n"
        'findings contains {"id": "bad_level", "level": "urgent", "message": "m"} if true\n'
    )
    with pytest.raises(PolicyError, match="level"):
        PolicyEvaluator(policy_copy).evaluate(load_plan("namespace_clean"))


def test_empty_policy_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no .rego files"):
        PolicyEvaluator(tmp_path)


@pytest.mark.parametrize(
    ("copy", "original"),
    [("local_admin_user", "local_namespace"), ("tcloud_admin_user", "tcloud_namespace")],
)
def test_admin_user_folders_copy_the_namespace_files(copy: str, original: str) -> None:
    base = REPO_ROOT / "terraform"
    for path in (base / original).glob("*.tf"):
        assert (base / copy / path.name).read_text() == path.read_text(), path.name


INJECTIONS = {
    "prefix": ("x; rm -rf /", "The prefix must match"),
    "name_suffix": ("$(touch pwned)", "The name_suffix must match"),
    "region": ("a`touch pwned`", "The region must match"),
    "address": ("127.0.0.1:7233 && touch pwned", "The address must be host:port"),
    "retention_days": ("1.5", "The retention_days must be an integer"),
}
EMAIL_INJECTION = ("admin_email", ("a@example.com; touch pwned", "The admin_email must be"))


@pytest.mark.parametrize("folder", ["local_namespace", "local_admin_user"])
def test_validation_rejects_injection(tmp_path: Path, folder: str) -> None:
    workdir = tmp_path / folder
    shutil.copytree(REPO_ROOT / "terraform" / folder, workdir)
    env = make_plans.terraform_env(make_plans.write_mirror(tmp_path))
    init = make_plans.terraform(workdir, env, "init", "-input=false")
    assert init.returncode == 0, init.stderr
    attempts = dict(INJECTIONS)
    if folder == "local_admin_user":
        attempts.update([EMAIL_INJECTION])
    args = [f"-var={name}={value}" for name, (value, _) in attempts.items()]
    # Every variable is bad at once: terraform reports each failed validation in one run.
    result = make_plans.terraform(workdir, env, "plan", "-input=false", *args)
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    for _, message in attempts.values():
        assert message in output
    assert not list(tmp_path.rglob("pwned"))


def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        [make_plans.terraform_binary(), "fmt", "-check", "-recursive"],
        cwd=REPO_ROOT / "terraform",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
