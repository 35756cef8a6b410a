"""The README's walkthrough, in a real browser, against a running `make demo`.

Usage (from the repository, with `make demo` running in another terminal):

    .venv/bin/python docs/walkthrough.py [--slack http://127.0.0.1:3000] [--ui http://localhost:8233]

It does what a newcomer does after `make demo`: opens the local Slack workspace as alice, runs
`/provision human-in-the-loop-update`, approves as bob with a reason, watches the apply, opens the
full plan in the thread, lists the stacks, and opens the run in the Temporal UI. It saves a
screenshot of each step under docs/walkthrough/ and fails (exit 1) on anything a newcomer would
trip on: a page error, a missing button, the Temporal UI's codec error banner.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import uuid
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

HERE = Path(__file__).resolve().parent
SHOTS = HERE / "walkthrough"
RUN_TIMEOUT_MS = 180_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / name))
    print(f"walkthrough: {SHOTS.relative_to(HERE.parent) / name}")


async def act_as(page: Page, name: str) -> None:
    await page.locator(".person", has_text=name).first.click()


async def slack_part(page: Page, slack_url: str, prefix: str) -> str:
    name = f"{prefix}-human-in-the-loop-update"
    await page.goto(f"{slack_url}?as=alice")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.locator("#app-status")).to_have_class(re.compile(r"\bonline\b"))
    composer = page.locator("#composer")
    await composer.fill(f"/provision human-in-the-loop-update --prefix {prefix}")
    await shot(page, "1-typing-the-command.png")
    await composer.press("Enter")
    run = page.locator(".message[data-kind=message]", has_text=f"human-in-the-loop-update · {name}")
    approve = run.locator('button[data-action-id="run_approve"]')
    await expect(approve).to_be_visible(timeout=RUN_TIMEOUT_MS)
    await expect(run).to_contain_text("awaiting approval")
    await shot(page, "2-awaiting-approval.png")

    await act_as(page, "bob")
    await approve.click()
    modal = page.locator("form.modal")
    await expect(modal.locator(".dialog-title")).to_have_text("Approve plan")
    await modal.locator('[data-block-id="reason"] textarea').fill("Reviewed the admin grant")
    await shot(page, "3-approving-with-a-reason.png")
    await modal.locator("[data-role=submit]").click()
    await expect(page.locator("form.modal")).to_have_count(0)
    await expect(run.locator(".bk-field", has_text="State")).to_contain_text(
        "applied", timeout=RUN_TIMEOUT_MS
    )
    await expect(run).to_contain_text("approved by @bob")
    await shot(page, "4-applied.png")

    await run.locator(".thread-summary").click()
    await expect(page.locator("#thread")).to_contain_text(f"Full plan of {name}")
    await expect(page.locator("#thread")).to_contain_text("Terraform")
    await shot(page, "5-the-plan-in-the-thread.png")

    await composer.fill("/provision stacks")
    await composer.press("Enter")
    await expect(page.locator(".message.ephemeral", has_text="Stacks")).to_be_visible()
    await shot(page, "6-stacks.png")
    return f"provision-{name}"


async def temporal_ui_part(page: Page, ui_url: str, workflow_id: str) -> None:
    await page.goto(f"{ui_url.rstrip('/')}/namespaces/default/workflows/{workflow_id}")
    await expect(page.get_by_text(workflow_id).first).to_be_visible(timeout=60_000)
    await expect(page.get_by_text("Completed").first).to_be_visible(timeout=60_000)
    banner = page.get_by_text(re.compile("Codec Server could not connect", re.I))
    if await banner.count():
        raise SystemExit("walkthrough: the Temporal UI shows the codec error banner")
    await shot(page, "7-the-run-in-the-temporal-ui.png")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slack", default="http://127.0.0.1:3000")
    parser.add_argument("--ui", default="http://localhost:8233")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1360, "height": 900})).new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            workflow_id = await slack_part(page, args.slack, f"walk{uuid.uuid4().hex[:4]}")
            await temporal_ui_part(page, args.ui, workflow_id)
        finally:
            await browser.close()
    if errors:
        print(f"walkthrough: the local Slack page reported errors: {errors}", file=sys.stderr)
        return 1
    print("walkthrough: done, no errors")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
