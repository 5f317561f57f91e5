"""A job's CRF search drawn as SVG: probes, the target line and the chosen CRF."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipecast.web import probe_chart

NS = "{http://www.w3.org/2000/svg}"
PROBES = [
    {"crf": 30, "mean": 96.1, "p1": 92.0},
    {"crf": 40, "mean": 93.4, "p1": 88.5},
    {"crf": 35, "mean": 95.0, "p1": 90.1},
]


def test_each_probe_is_a_point_in_crf_order_with_the_target_and_the_choice() -> None:
    svg = ET.fromstring(probe_chart(PROBES, {"target": 95}, 35.5))
    probes = svg.findall(f"{NS}circle[@class='probe']")
    assert [c.find(f"{NS}title").text for c in probes] == [  # type: ignore[union-attr]
        "CRF 30: VMAF 96.10, 1% low 92.00",
        "CRF 35: VMAF 95.00, 1% low 90.10",
        "CRF 40: VMAF 93.40, 1% low 88.50",
    ]
    xs = [float(c.get("cx", 0)) for c in probes]
    ys = [float(c.get("cy", 0)) for c in probes]
    assert xs == sorted(xs)  # CRF grows to the right
    assert ys == sorted(ys)  # VMAF falls as CRF grows: lower on the page
    target = svg.find(f"{NS}line[@class='target']")
    assert target is not None
    assert ys[0] < float(target.get("y1", 0)) < ys[2]  # 95 lies between 96.1 and 93.4
    assert svg.find(f"{NS}circle[@class='chosen']") is not None


def test_nothing_is_drawn_without_probes_and_text_is_escaped() -> None:
    assert probe_chart([], {}, None) == ""
    assert probe_chart([{"crf": "<x>", "mean": 1}], {}, None) == ""
    svg = probe_chart([{"crf": 30, "mean": 95}], {"target": "<b>"}, None)
    ET.fromstring(svg)  # well formed: a bad target is left out, never pasted in
