"""The local workspace in a real headless Chromium (Debian's, driven by Playwright).

One test draws every Block Kit piece the page knows (and some it does not) and tries to inject
script through message text; the other is the demo a newcomer does: the real dev server, a real
`provision worker` process, the real bot and the LocalSlack page, from `/provision …` to applied.
Screenshots go to test-artifacts/ (UPDATE_DOCS_SCREENSHOT=1 also refreshes
docs/local-workspace.png).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.testing import WorkflowEnvironment

from bot.app import BotHandle
from localslack import LocalSlack
from provision.bot_main import start_bot
from provision.client import connect
from provision.dev_workspace import provision_command_hints, start_local_slack
from provision.settings import Settings
from tests.support.processes import REPO_ROOT, Stack

playwright_api = pytest.importorskip("playwright.async_api")
Browser = playwright_api.Browser
Page = playwright_api.Page
expect = playwright_api.expect

pytestmark = pytest.mark.e2e

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
INFRA = "C0INFRA"
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A run plans, checks policy and applies with real terraform: seconds, but CI machines are slow.
RUN_TIMEOUT_MS = 120_000


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.skip("Debian's chromium is not installed (`make test` installs it)")
    return found


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def unexpected(message: Any) -> bool:
    """A console error, except the browser's note on a 4xx answer to an action, which the page
    turns into what it shows (an inline error, a notice)."""
    if message.type != "error":
        return False
    answered = "/ui/" in (message.location or {}).get("url", "")
    return not (answered and "status of 4" in message.text)


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda m: errors.append(m.text) if unexpected(m) else None)
    try:
        yield opened
    finally:
        await context.close()
    assert errors == [], f"the page reported errors: {errors}"


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path))
    return path


async def open_as(page: Page, slack: LocalSlack, user: str) -> None:
    await page.goto(f"{slack.url}?as={user}")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def act_as(page: Page, user: str) -> None:
    await page.select_option("#user-switcher", user)
    await expect(page.locator("body")).to_have_attribute("data-user", user)


# -- rendering, without the real bot ----------------------------------------------------------

GALLERY_TEXT = (
    "*bold* _italic_ ~strike~ `code` <https://example.com/docs|the docs> <@U0BOB> <@U0ALICE>\n"
    "• first point\n• second point\n"
    "&gt; a quote\n"
    "```plan with &lt;tags&gt; and *no bold*```\n"
    "snake_case_stays plain :white_check_mark: <!here>\n"
    # What a hostile terraform output or user could try; the bot escapes, but the page must not
    # rely on it.
    "<javascript:window.__xss=1|click me> <img src=x onerror=window.__xss=1> "
    "&lt;script&gt;window.__xss=1&lt;/script&gt;"
)


def gallery_blocks() -> list[dict[str, Any]]:
    def text(t: str) -> dict[str, str]:
        return {"type": "plain_text", "text": t}

    return [
        {"type": "header", "text": text("Gallery <script>window.__xss=1</script> :rocket:")},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": GALLERY_TEXT},
            "accessory": {
                "type": "button",
                "action_id": "more",
                "value": "m",
                "text": text("More"),
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Requested by*\n<@U0ALICE>"},
                {
                    "type": "mrkdwn",
                    "text": "*Run*\n<http://localhost:8233/namespaces/default|run-1>",
                },
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "context `run-1`"}]},
        {"type": "divider"},
        {
            "type": "actions",
            "block_id": "acts",
            "elements": [
                {
                    "type": "button",
                    "action_id": "open_form",
                    "value": "f",
                    "style": "primary",
                    "text": text("Open form"),
                },
                {
                    "type": "button",
                    "action_id": "deny",
                    "value": "d",
                    "style": "danger",
                    "text": text("Deny"),
                    "confirm": {
                        "title": text("Deny it?"),
                        "text": {"type": "mrkdwn", "text": "Really *deny*?"},
                        "confirm": text("Deny"),
                        "deny": text("Keep it"),
                        "style": "danger",
                    },
                },
                {
                    "type": "overflow",
                    "action_id": "menu",
                    "options": [{"text": text("One"), "value": "1"}],
                },
            ],
        },
        {
            "type": "video",
            "title": text("A video"),
            "video_url": "https://example.com/v",
            "thumbnail_url": "https://example.com/t.png",
            "alt_text": "video",
        },
    ]


FORM = {
    "type": "modal",
    "callback_id": "form",
    "title": {"type": "plain_text", "text": "A form"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "one",
            "label": {"type": "plain_text", "text": "One line"},
            "element": {"type": "plain_text_input", "action_id": "v"},
        },
        {
            "type": "input",
            "block_id": "many",
            "optional": True,
            "label": {"type": "plain_text", "text": "Many lines"},
            "element": {"type": "plain_text_input", "action_id": "v", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "pick",
            "label": {"type": "plain_text", "text": "Pick"},
            "element": {
                "type": "static_select",
                "action_id": "v",
                "options": [
                    {"text": {"type": "plain_text", "text": "Red"}, "value": "red"},
                    {"text": {"type": "plain_text", "text": "Blue"}, "value": "blue"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "when",
            "optional": True,
            "label": {"type": "plain_text", "text": "When"},
            "element": {"type": "datepicker", "action_id": "v"},
        },
    ],
}


@dataclass
class GalleryApp:
    handler: AsyncSocketModeHandler
    actions: list[str]
    submissions: list[dict[str, Any]]


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack()
    server.ui.hints = [provision_command_hints()]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def gallery_app(slack: LocalSlack) -> AsyncIterator[GalleryApp]:
    app = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))
    recorded = GalleryApp(AsyncSocketModeHandler(app, slack.app_token), [], [])

    @app.action(re.compile(".*"))
    async def on_action(ack, body, client, action):
        await ack()
        recorded.actions.append(action["action_id"])
        if action["action_id"] == "open_form":
            await client.views_open(trigger_id=body["trigger_id"], view=FORM)

    @app.view("form")
    async def on_form(ack, view):
        recorded.submissions.append(view["state"]["values"])
        await ack()

    await recorded.handler.connect_async()
    try:
        await slack.wait_for(lambda s: s.connections == 1, timeout=10)
        yield recorded
    finally:
        await recorded.handler.close_async()


async def test_block_kit_renders_safely_and_everything_works(
    slack: LocalSlack, gallery_app: GalleryApp, page: Page
) -> None:
    web = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    posted = await web.chat_postMessage(channel=INFRA, text="gallery", blocks=gallery_blocks())
    slack.assert_no_validation_failures()
    # A block newer than this client (bypassing the API's validation, as a future Slack would).
    slack.workspace.post_message(
        INFRA,
        user=slack.workspace.bot_user.id,
        text="future",
        blocks=[{"type": "future_block", "block_id": "f"}],
    )
    await web.chat_postEphemeral(channel=INFRA, user=ALICE, text="psst, alice")
    await web.files_upload_v2(
        channel=INFRA,
        thread_ts=posted["ts"],
        filename="plan.txt",
        content="+ null_resource.grant\n<b>not html</b>",
        title="Full plan",
    )

    await open_as(page, slack, "alice")
    gallery = page.locator(f'#messages > .message[data-ts="{posted["ts"]}"]')
    await expect(gallery.locator(".bk-header")).to_have_text(
        "Gallery <script>window.__xss=1</script> 🚀"
    )
    section = gallery.locator(".bk-section").first
    await expect(section.locator("b").first).to_have_text("bold")
    await expect(section.locator("i").first).to_have_text("italic")
    await expect(section.locator("s").first).to_have_text("strike")
    await expect(section.locator("code.inline-code")).to_have_text("code")
    await expect(section.locator("a.link", has_text="the docs")).to_have_attribute(
        "href", "https://example.com/docs"
    )
    await expect(section.locator("a.link", has_text="the docs")).to_have_attribute(
        "target", "_blank"
    )
    await expect(section.locator(".mention", has_text="@bob")).to_be_visible()
    await expect(section.locator(".mention-me")).to_have_text("@alice")
    await expect(section.locator("ul.list li")).to_have_text(["first point", "second point"])
    await expect(section.locator("blockquote")).to_have_text("a quote")
    await expect(section.locator("pre.code-block")).to_have_text("plan with <tags> and *no bold*")
    await expect(section).to_contain_text("snake_case_stays plain ✅ @here")
    await expect(section).to_contain_text("<script>window.__xss=1</script>")
    await expect(gallery.locator(".bk-fields .bk-field")).to_have_count(2)
    await expect(
        gallery.locator('a[href="http://localhost:8233/namespaces/default"]')
    ).to_have_text("run-1")
    await expect(gallery.locator(".bk-button.primary")).to_have_text("Open form")
    await expect(gallery.locator(".bk-button.danger")).to_have_text("Deny")
    await expect(gallery.locator(".bk-unsupported")).to_have_text(
        ["⚠ unsupported element: overflow", "⚠ unsupported block: video"]
    )
    future = page.locator(".message", has_text="future").locator(".bk-unsupported")
    await expect(future).to_have_text("⚠ unsupported block: future_block")
    # Nothing from the text became markup: no script, no image, no javascript: link.
    assert await page.evaluate("window.__xss") is None
    assert await page.locator(".messages script, .messages img, a[href^='javascript']").count() == 0

    # Ephemerals are alice's alone.
    note = page.locator(".message.ephemeral", has_text="psst, alice")
    await expect(note.locator(".ephemeral-note")).to_contain_text("Only visible to you")
    await page.locator(".person", has_text="bob").click()
    await expect(page.locator("body")).to_have_attribute("data-user", BOB)
    await expect(page.locator(".message.ephemeral")).to_have_count(0)
    await expect(gallery.locator(".mention-me")).to_have_text("@bob")

    # A confirm dialog stops the click until confirmed.
    await gallery.locator(".bk-button.danger").click()
    dialog = page.locator(".confirm-dialog")
    await expect(dialog).to_contain_text("Really deny?")
    await dialog.get_by_role("button", name="Keep it").click()
    await expect(dialog).to_have_count(0)
    await gallery.locator(".bk-button.danger").click()
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await gallery.locator(".bk-button.danger").click()
    await page.locator(".confirm-dialog").get_by_role("button", name="Deny").click()
    await slack.wait_for(lambda s: gallery_app.actions == ["deny"], timeout=10)

    # A modal with several inputs; the client checks required fields before the app sees them.
    await gallery.locator(".bk-button.primary").click()
    modal = page.locator("form.modal")
    await expect(modal.locator(".dialog-title")).to_have_text("A form")
    await expect(modal.locator(".bk-unsupported")).to_have_text("⚠ unsupported input: datepicker")
    await modal.locator('[data-block-id="many"] textarea').fill("line 1\nline 2")
    await modal.locator("[data-role=submit]").click()
    await expect(modal.locator('[data-block-id="one"] .bk-error')).to_have_text(
        "Please complete this required field."
    )
    # What was typed survives the error redraw.
    await expect(modal.locator('[data-block-id="many"] textarea')).to_have_value("line 1\nline 2")
    await modal.locator('[data-block-id="one"] input').fill("hello")
    await modal.locator('[data-block-id="pick"] select').select_option("blue")
    await modal.locator("[data-role=submit]").click()
    await expect(page.locator("form.modal")).to_have_count(0)
    [values] = gallery_app.submissions
    assert values["one"]["v"]["value"] == "hello"
    assert values["many"]["v"]["value"] == "line 1\nline 2"
    assert values["pick"]["v"]["selected_option"]["value"] == "blue"

    # Threads, and a file in one, shown as text.
    await gallery.locator(".thread-summary").click()
    thread = page.locator("#thread")
    await expect(thread.locator(".file-title")).to_have_text("Full plan")
    await thread.locator(".file-open").click()
    await expect(page.locator(".file-text-content")).to_have_text(
        "+ null_resource.grant\n<b>not html</b>"
    )
    await screenshot(page, "gallery-file.png")
    await page.keyboard.press("Escape")
    await expect(page.locator(".file-viewer")).to_have_count(0)

    # Messages are updated in place.
    await web.chat_update(
        channel=INFRA,
        ts=posted["ts"],
        text="changed",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*changed*"}}],
    )
    await expect(gallery.locator(".edited")).to_have_text("(edited)")
    await expect(gallery.locator(".content b")).to_have_text("changed")
    await expect(page.locator("#messages > .message")).to_have_count(2)
    await screenshot(page, "gallery.png")


MRKDWN_CASES = [
    ("*bold* _it_ ~gone~", '<div class="line"><b>bold</b> <i>it</i> <s>gone</s></div>'),
    ("*b _bi_*", '<div class="line"><b>b <i>bi</i></b></div>'),
    # Markers count only at word boundaries.
    ("a*b*c snake_case_name 2*3*4", '<div class="line">a*b*c snake_case_name 2*3*4</div>'),
    ("* not bold *", '<div class="line">* not bold *</div>'),
    (
        "`*code*` &lt;b&gt; &amp;lt;",
        '<div class="line"><code class="inline-code">*code*</code> &lt;b&gt; &amp;lt;</div>',
    ),
    (
        "*<https://x.test/a?b=1&amp;c=2|bold link>*",
        '<div class="line"><b><a class="link" href="https://x.test/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer">bold link</a></b></div>',
    ),
    (
        "<https://x.test>",
        '<div class="line"><a class="link" href="https://x.test" '
        'target="_blank" rel="noopener noreferrer">https://x.test</a></div>',
    ),
    ("<javascript:alert(1)|x> <data:text/html,hi|y>", '<div class="line">x y</div>'),
    (
        "<@U0BOB> <@U0NOBODY|who> <!channel> <#C0INFRA>",
        '<div class="line"><span class="mention" data-user-id="U0BOB">@bob</span> '
        '<span class="mention" data-user-id="U0NOBODY">@who</span> '
        '<span class="mention mention-broadcast">@channel</span> '
        '<span class="mention channel-mention">#infra</span></div>',
    ),
    (
        "<!date^0^{date_num} {time}|fallback>",
        '<div class="line"><span class="date" title="fallback">1970-01-01 00:00</span></div>',
    ),
    (":white_check_mark: :no_such_emoji:", '<div class="line">✅ :no_such_emoji:</div>'),
    (
        "before\n```a &lt; b\n*c*```\nafter",
        '<div class="line">before</div><pre class="code-block">a &lt; b\n*c*</pre>'
        '<div class="line">after</div>',
    ),
    (
        "&gt; quoted\n> too",
        '<blockquote class="quote"><div class="line">quoted</div><div class="line">too</div>'
        "</blockquote>",
    ),
    ("• one\n- two", '<ul class="list"><li>one</li><li>two</li></ul>'),
    ("3. three\n4. four", '<ol class="list" start="3"><li>three</li><li>four</li></ol>'),
    ("<img src=x onerror=alert(1)>", '<div class="line">img src=x onerror=alert(1)</div>'),
]


async def test_mrkdwn_renderer(slack: LocalSlack, browser: Browser) -> None:
    context = await browser.new_context(timezone_id="UTC")
    try:
        page = await context.new_page()
        await page.goto(slack.url)
        rendered = await page.evaluate(
            """async (cases) => {
                const { renderMrkdwn } = await import("/ui/static/mrkdwn.js");
                const ctx = {
                    users: { U0BOB: { name: "bob" } }, channels: { C0INFRA: { name: "infra" } },
                };
                return cases.map((text) => {
                    const box = document.createElement("div");
                    box.append(renderMrkdwn(text, ctx));
                    return box.innerHTML;
                });
            }""",
            [text for text, _ in MRKDWN_CASES],
        )
    finally:
        await context.close()
    assert dict(zip([t for t, _ in MRKDWN_CASES], rendered, strict=True)) == dict(MRKDWN_CASES)


async def test_composer_completes_commands_verbs_scenarios_and_options(
    slack: LocalSlack, page: Page
) -> None:
    await open_as(page, slack, "carol")
    composer = page.locator("#composer")
    items = page.locator("#completion .completion-item")
    await composer.press_sequentially("/pro")
    await expect(items).to_have_count(1)
    await expect(items.first).to_have_attribute("data-value", "/provision")
    await composer.press("Tab")
    await expect(composer).to_have_value("/provision ")
    await composer.press_sequentially("de")
    await expect(items).to_have_count(2)
    await expect(items.locator(".completion-value")).to_have_text(["deny", "destroy"])
    await composer.press("ArrowDown")
    await composer.press("Enter")
    await expect(composer).to_have_value("/provision destroy ")
    await composer.press_sequentially("--")
    await expect(items.locator(".completion-value")).to_have_text(
        ["--scenario", "--stack", "--prefix", "--pace"]
    )
    await composer.press("Escape")
    await expect(items).to_have_count(0)


# -- the demo, with the real bot --------------------------------------------------------------


@dataclass
class LocalWorkspace:
    slack: LocalSlack
    stack: Stack
    bot: BotHandle
    settings: Settings


@pytest_asyncio.fixture(scope="module")
async def workspace(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalWorkspace]:
    """What `provision dev` runs without Slack tokens, with a worker process of its own."""
    address = temporal_env.client.service_client.config.target_host
    data_dir = tmp_path_factory.mktemp("local-workspace")
    stack = Stack(address, data_dir, f"tq-{uuid.uuid4()}")
    base = Settings(
        temporal_address=address,
        task_queue=stack.task_queue,
        data_dir=data_dir,
        local_slack_port=0,
        bot_health_address="127.0.0.1:0",
    )
    slack, settings = await start_local_slack(base)
    bot: BotHandle | None = None
    try:
        await stack.start_worker(
            {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.api_url}
        )
        bot = await start_bot(settings, await connect(settings))
        yield LocalWorkspace(slack, stack, bot, settings)
    finally:
        if bot is not None:
            await bot.stop()
        await stack.stop_worker()
        await slack.stop()


async def test_a_newcomer_runs_the_approval_demo_in_the_browser(
    workspace: LocalWorkspace, page: Page
) -> None:
    slack = workspace.slack
    prefix = f"ui{uuid.uuid4().hex[:6]}"
    name = f"{prefix}-human-in-the-loop-update"
    await open_as(page, slack, "alice")
    await expect(page.locator("#app-status")).to_have_class(re.compile(r"\bonline\b"))

    # Alice types the command, with the composer's help.
    composer = page.locator("#composer")
    await composer.press_sequentially("/prov")
    await composer.press("Tab")
    await composer.press_sequentially("human-in-the-loop-u")
    await expect(page.locator("#completion .completion-item.selected")).to_have_attribute(
        "data-value", "human-in-the-loop-update"
    )
    await composer.press("Enter")
    # Each run gets its own namespace on the shared test server.
    await composer.press_sequentially("--pre")
    await composer.press("Tab")
    await composer.press_sequentially(prefix)
    await expect(composer).to_have_value(f"/provision human-in-the-loop-update --prefix {prefix}")
    await composer.press("Enter")
    await expect(composer).to_have_value("")

    # The run message: plan, policy verdict, a link to the run in the Temporal UI, buttons.
    run = page.locator(".message[data-kind=message]", has_text=f"human-in-the-loop-update · {name}")
    approve = run.locator('button[data-action-id="run_approve"]')
    await expect(approve).to_be_visible(timeout=RUN_TIMEOUT_MS)
    await expect(run).to_contain_text("awaiting approval")
    await expect(run).to_contain_text("Plan")
    await expect(run).to_contain_text("namespace_admin")
    await expect(run.locator('button[data-action-id="run_deny"]')).to_have_class(
        re.compile(r"\bdanger\b")
    )
    await expect(approve).to_have_class(re.compile(r"\bprimary\b"))
    temporal_link = run.locator(f'a.link[href*="/workflows/provision-{name}/"]')
    await expect(temporal_link).to_have_text(f"provision-{name}")
    assert (await temporal_link.get_attribute("href") or "").startswith(
        workspace.settings.ui_url.rstrip("/") + "/namespaces/default/workflows/"
    )
    await screenshot(page, "demo-1-awaiting-approval.png")

    # Four eyes: alice asked for it, so she may not approve it.
    await approve.click()
    refused = page.locator(".message.ephemeral", has_text="Four eyes")
    await expect(refused).to_contain_text("Only visible to you")
    await screenshot(page, "demo-2-four-eyes.png")

    # Carol is not an approver; alice's refusal is not hers to see.
    await act_as(page, CAROL)
    await expect(refused).to_have_count(0)
    await approve.click()
    await expect(page.locator(".message.ephemeral", has_text="not an approver")).to_be_visible()

    # Bob is: the modal asks him why.
    await act_as(page, BOB)
    await approve.click()
    modal = page.locator("form.modal")
    await expect(modal.locator(".dialog-title")).to_have_text("Approve plan")
    reason = modal.locator('[data-block-id="reason"] textarea')
    await modal.locator("[data-role=submit]").click()
    error = modal.locator('[data-block-id="reason"] .bk-error')
    await expect(error).to_have_text("Please complete this required field.")
    await screenshot(page, "demo-3-empty-reason.png")
    # Blank passes the client and is refused by the workflow's update validator, inline.
    await reason.fill("   ")
    await modal.locator("[data-role=submit]").click()
    await expect(error).to_contain_text("reason is required")
    await reason.fill("Reviewed the admin grant with the team")
    shot = await screenshot(page, "demo-4-approving.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, REPO_ROOT / "docs" / "local-workspace.png")
    await modal.locator("[data-role=submit]").click()
    await expect(page.locator("form.modal")).to_have_count(0)

    # The apply, watched live: the same message, updated in place.
    await expect(run.locator(".bk-field", has_text="State")).to_contain_text(
        "applied", timeout=RUN_TIMEOUT_MS
    )
    await expect(run).to_contain_text("approved by @bob")
    await expect(run).to_contain_text("Reviewed the admin grant with the team")
    await expect(approve).to_have_count(0)
    await expect(page.locator(".message.ephemeral", has_text="approved")).to_be_visible()

    # The full plan is in the run's thread.
    await run.locator(".thread-summary").click()
    await expect(page.locator("#thread")).to_contain_text(f"Full plan of {name}")
    await screenshot(page, "demo-5-applied.png")
    assert await workspace.stack.namespace_exists(name)
    slack.assert_no_validation_failures()
