"""The pages in a real browser (chromium via Playwright) against a real gateway and node."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecast.actors import (
    EncodeSettings,
    MediaPolicy,
    Node,
    NodeConfig,
    RunRules,
    StageConfig,
    make_clip,
)
from pipecast.testing import TEST_STAGE_KINDS, free_endpoint, start_test_node, start_test_web

STAGES = (StageConfig("sum", "checksum"),)
PAUSED = "article.stage[data-stage=sum][data-status=paused]"


@pytest.fixture
def node(tmp_path: Path):
    node = start_test_node(tmp_path / "data", stages=STAGES)
    yield node
    node.stop()


@pytest.fixture
def web(node):
    server = start_test_web(node)
    yield server
    server.stop()


def open_page(browser, url: str):
    page = browser.new_context().new_page()  # a context each: two browsers, two sessions
    page.goto(url)
    page.wait_for_selector("#link[data-state=live]")
    return page


def test_two_pages_see_both_watchers_and_a_pause_on_one_shows_on_both(web, browser) -> None:
    a, b = open_page(browser, web.url), open_page(browser, web.url)
    for page in (a, b):
        page.wait_for_function(
            "() => [...document.querySelectorAll('#presence li')]"
            ".some(li => li.textContent.includes('2 watching'))"
        )
    a.click("article.stage[data-stage=sum] button[data-op=pause]")
    for page in (a, b):
        page.wait_for_selector(PAUSED, timeout=1000)
    assert "pause" in a.inner_text("#result")


def test_a_value_published_on_ext_appears_within_a_second(node, web, browser) -> None:
    page = open_page(browser, web.url)
    node.client().call("publish", topic="ext/script", key="step", data={"n": 42})
    panel = page.wait_for_selector("article.topic[data-topic='ext/script']", timeout=1000)
    assert panel is not None
    assert '{"n":42}' in panel.inner_text()


def test_a_restarted_gateway_shows_the_reload_then_the_current_state(node, browser) -> None:
    first = start_test_web(node)
    page = open_page(browser, first.url)
    port, token = first.port, first.web.access.token
    first.stop()
    node.client().call("publish", topic="ext/while", key="k", data={"v": "missed"})
    second = start_test_web(node, token=token, http=f"127.0.0.1:{port}")
    try:
        page.wait_for_function(
            "() => document.getElementById('banner').textContent"
            ".includes('reconnected, state reloaded (the gateway restarted)')",
            timeout=15000,
        )
        page.wait_for_selector("article.topic[data-topic='ext/while']", timeout=2000)
        node.client().call("publish", topic="ext/after", key="k", data={"v": 2})
        page.wait_for_selector("article.topic[data-topic='ext/after']", timeout=1000)
    finally:
        second.stop()


def test_a_restarted_node_shows_the_reload_then_the_current_state(tmp_path: Path, browser) -> None:
    cfg = NodeConfig(
        *(free_endpoint() for _ in range(3)),
        data_dir=tmp_path / "data",
        stages=STAGES,
        networks=(),
        heartbeat_interval=0.1,
        stage_kinds=TEST_STAGE_KINDS,
    )
    node = Node(cfg).start()
    server = start_test_web(node)
    try:
        page = open_page(browser, server.url)
        node.client().call("publish", topic="ext/old", key="k", data={"v": 1})
        page.wait_for_selector("article.topic[data-topic='ext/old']")
        node.stop()
        node = Node(cfg).start()
        page.wait_for_function(
            "() => document.getElementById('banner').textContent"
            ".includes('the node restarted: state reloaded')",
            timeout=15000,
        )
        page.wait_for_selector("article.topic[data-topic='ext/old']", state="detached")
        node.client().call("publish", topic="ext/new", key="k", data={"v": 2})
        page.wait_for_selector("article.topic[data-topic='ext/new']", timeout=1000)
    finally:
        server.stop()
        node.stop()


def test_a_run_started_from_the_networks_page_streams_its_invocations(
    tmp_path: Path, browser
) -> None:
    node = start_test_node(tmp_path / "data", stages=())
    server = start_test_web(node)
    try:
        page = open_page(browser, server.url.replace("/?", "/networks?"))
        form = page.wait_for_selector("section.network[data-network=demo] form.run-form")
        assert form is not None
        page.fill("section.network[data-network=demo] input[name=prompt]", "a lantern at sea")
        page.click("section.network[data-network=demo] button[type=submit]")
        page.wait_for_selector(
            "section.network[data-network=demo] li.invocation[data-state=completed]"
        )
        status = page.inner_text("section.network[data-network=demo] .run-status")
        assert "a lantern at sea" in status
        assert "new prompts in" in status  # the lockout counts down
        page.wait_for_selector("section.network[data-network=demo] li.invocation img")
    finally:
        server.stop()
        node.stop()


def test_a_jobs_search_is_drawn_as_a_chart(tmp_path: Path, browser, artifacts: Path) -> None:
    lib = tmp_path / "library"
    lib.mkdir()
    stages = (
        StageConfig("analyze", "analyze"),
        StageConfig("crf_search", "crf_search"),
        StageConfig("encode", "encode"),
    )
    node = start_test_node(
        tmp_path / "data",
        stages,
        media=MediaPolicy(min_bytes=1024),
        encode=EncodeSettings(preset=12),
        networks=(),
    )
    server = start_test_web(node)
    try:
        clip = make_clip(lib / "film.mkv", seconds=4)
        (job_id,) = node.client().call("enqueue", paths=[str(clip)])["ids"]
        page = open_page(browser, server.url.replace("/?", "/jobs?"))
        row = page.wait_for_selector(
            f"#jobs tr[data-state=encoded] a[href='/jobs/{job_id}']", timeout=240_000
        )
        assert row is not None
        row.click()
        page.wait_for_selector("svg.chart")
        assert page.locator("svg.chart circle.probe").count() >= 1
        assert page.locator("svg.chart line.target").count() == 1
        assert page.locator("svg.chart circle.chosen").count() == 1
        assert "ffmpeg" in page.inner_text("dl.facts")
        page.locator("figure").screenshot(path=str(artifacts / "job-chart.png"))
        page.screenshot(path=str(artifacts / "job-page.png"), full_page=True)
    finally:
        server.stop()
        node.stop()


def test_a_kiosk_follows_its_installation_switch_within_a_second(tmp_path: Path, browser) -> None:
    networks = (RunRules("demo", ("paint", "caption", "remix")), RunRules("echoes", ("echo",)))
    node = start_test_node(tmp_path / "data", stages=(), networks=networks)
    server = start_test_web(node)
    try:
        client = node.client()
        client.call("installations.add", name="hall", network="demo", display="grid:2x2")
        client.call("run", network="demo", prompt="a harbour at dawn")
        client.call("run", network="echoes", prompt="hello hello")
        kiosk = open_page(browser, server.url.replace("/?", "/display/hall?"))
        kiosk.wait_for_selector("#screen[data-network=demo] li.invocation[data-state=completed]")
        assert kiosk.locator("#screen li.invocation").count() == 4  # a 2x2 ring of cells
        # the screen is a watcher of its installation's topic: one screen shows it
        admin = open_page(browser, server.url.replace("/?", "/networks?"))
        admin.wait_for_selector("li[data-installation=hall] .what:has-text('1 screen')")
        admin.fill("li[data-installation=hall] input[name=network]", "echoes")
        admin.fill("li[data-installation=hall] input[name=display]", "single:0:1")
        admin.click("li[data-installation=hall] button[type=submit]")
        shown = kiosk.wait_for_selector(
            "#screen[data-network=echoes][data-display='single:0:1'] li.invocation", timeout=1000
        )
        assert shown is not None
        assert "hello hello" in kiosk.inner_text("#screen")  # the echoes run, at once
        assert kiosk.locator("#screen li.invocation").count() == 1  # no stale cell
    finally:
        server.stop()
        node.stop()
