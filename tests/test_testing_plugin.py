"""The pytest plugin pipecast.testing, used as a harness would use it."""

from __future__ import annotations

from pipecast.testing import wait_for


def test_the_plugin_fixtures_give_a_running_node_a_client_and_watchers(
    pipecast_node, pipecast_client, pipecast_watch
):
    w = pipecast_watch("stage/", "ext/")
    assert pipecast_client.call("ping")["epoch"] == pipecast_node.bridge.epoch
    pipecast_client.call("publish", cid="harness-1", topic="ext/h", key="k", data={"n": 1})
    assert w.wait_for(lambda c: c.latest("ext/h", "k") == {"n": 1})
    assert w.updates("ext/h")[0].cid == "harness-1"
    pipecast_client.call("pause", stage="encode")
    assert w.wait_for(lambda c: (c.latest("stage/encode") or {}).get("status") == "paused")


def test_cid_of_a_request_appears_in_every_log_line_it_causes(
    pipecast_node, pipecast_client, caplog
):
    caplog.set_level("INFO", logger="pipecast")
    pipecast_client.call("toggle", stage="encode", cid="trace-me")
    assert wait_for(
        lambda: any("stage" in r.name and "trace-me" in r.getMessage() for r in caplog.records), 5
    )
    caused = [r.getMessage() for r in caplog.records if "trace-me" in r.getMessage()]
    assert any(r.startswith("control toggle") for r in caused)
    assert any("encode: toggle" in r for r in caused)
