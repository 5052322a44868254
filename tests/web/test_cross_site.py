"""Other sites' pages in a real browser, against a feed on loopback without a token: one cannot write to it
(a `text/plain` fetch or form needs no CORS preflight, so the feed refuses any body not declared JSON),
and one that rebinds its own name to 127.0.0.1 cannot read it (its requests carry its name in `Host`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.support.server import LiveServer
from tests.web.support import CHROMIUM_ARGS, Api, chromium_path

ATTACKER = "attacker.test"
REBOUND = "rebound.test"
FORGED_EVENT = '{"event_type": "tool_call", "tool_name": "forged"}'
# A form posted as text/plain sends `name=value`: the name opens a JSON object, the value closes it.
FORGED_FORM = """<!doctype html>
<form method="post" enctype="text/plain" action="FEED/activities/log">
  <input name='{"event_type": "tool_call", "tool_name": "forged_form", "error_message": "' value='"}'>
</form>"""


@pytest.fixture(scope="module")
def rebinding_browser(playwright: Playwright) -> Iterator[Browser]:
    # The browser resolves REBOUND to 127.0.0.1, as a DNS-rebinding attack makes it do once the page
    # has loaded from the attacker's own address. ATTACKER is on loopback too: Chromium itself now keeps
    # public pages from reaching loopback, other browsers and pages on the local network do not.
    rules = f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1, MAP {ATTACKER} 127.0.0.1"
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=[*CHROMIUM_ARGS, rules])
    yield browser
    browser.close()


@pytest.fixture
def context(rebinding_browser: Browser) -> Iterator[BrowserContext]:
    context = rebinding_browser.new_context()
    yield context
    context.close()


@pytest.fixture
def attacker(live_server: Callable[..., LiveServer]) -> Callable[[str], str]:
    """Serve `html` as another site's page; its URL."""
    pages: dict[str, str] = {}

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(pages["html"])

    server = live_server(app=Starlette(routes=[Route("/", page)]))

    def serve(html: str) -> str:
        pages["html"] = html
        return f"http://{ATTACKER}:{server.port}/"

    return serve


def test_another_sites_page_cannot_write_to_the_feed(
    server: LiveServer, api: Api, context: BrowserContext, attacker: Callable[[str], str]
) -> None:
    page = context.new_page()
    page.goto(attacker("<!doctype html><title>another site</title>"))

    answers = page.evaluate(
        """async ({ feed, event }) => {
            const answers = [];
            for (const [path, body] of [["log", event], ["batch", `{"events": [${event}]}`]]) {
                for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
                    // no-cors: what any page may send anywhere without asking; the answer is opaque
                    const r = await fetch(`${feed}/activities/${path}`, {
                        method: "POST", mode: "no-cors", headers: { "Content-Type": type }, body,
                    });
                    answers.push(r.type);
                }
            }
            return answers;
        }""",
        {"feed": server.url, "event": FORGED_EVENT},
    )

    assert answers == ["opaque"] * 4  # every request reached the feed
    assert api.client.get("/activities/recent").json() == []


def test_another_sites_form_cannot_write_to_the_feed(
    server: LiveServer, api: Api, context: BrowserContext, attacker: Callable[[str], str]
) -> None:
    page = context.new_page()
    page.goto(attacker(FORGED_FORM.replace("FEED", server.url)))

    with page.expect_navigation():
        page.locator("form").evaluate("form => form.submit()")

    assert "Content-Type: application/json" in page.content()
    assert api.client.get("/activities/recent").json() == []


def test_a_rebinding_page_cannot_read_the_feed(server: LiveServer, api: Api, context: BrowserContext) -> None:
    api.log(tool_name="private_tool")
    page = context.new_page()

    loaded = page.goto(f"http://{REBOUND}:{server.port}/")
    # Once on the rebound name, the page's requests to the feed are same-origin: nothing stops a read
    # but the feed's refusal of a Host it does not answer to.
    status, body = page.evaluate(
        "async () => { const r = await fetch('/activities/recent'); return [r.status, await r.text()]; }"
    )

    assert loaded is not None
    assert loaded.status == 421
    assert status == 421
    assert "ACTIVITY_FEED_ALLOWED_HOSTS" in body
    assert "private_tool" not in body


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_the_page_loads_and_streams_on_a_loopback_name(
    server: LiveServer, api: Api, context: BrowserContext, host: str
) -> None:
    before = api.log(tool_name="before_the_page")
    page = context.new_page()
    page.goto(f"http://{host}:{server.port}/")

    expect(page.locator(f'article.card[data-id="{before["id"]}"]')).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    live = api.log(tool_name="while_the_page_is_open")
    expect(page.locator(f'article.card[data-id="{live["id"]}"]')).to_be_visible()
