"""One search's probes sample by sample: settling, pairing, closing. Pure."""

from __future__ import annotations

import math

import pytest

from pipecast.actors.media.crf import ProbeBook, SampleResult

CUTS = {0: 1000, 1: 3000, 2: 2000, 3: 4000}  # source bytes of each sample
BASE = {0: 96.0, 1: 92.0, 2: 98.0, 3: 94.0}  # each sample's VMAF at crf 30


def result(vmaf: float, size: int, frames: int = 10, cached: bool = False) -> SampleResult:
    return SampleResult((vmaf,) * frames, size, frames, None, cached)


def moved(vmaf: float, step: float) -> float:
    return 100.0 - (100.0 - vmaf) * math.exp(step)


def percent(ratio: float) -> float:
    return 100.0 * ratio


def complete_probe(book: ProbeBook, crf: float, step: float = 0.0) -> None:
    book.open(crf)
    for i, v in BASE.items():
        book.add(i, result(moved(v, step), CUTS[i] // 4))
    book.close(CUTS, percent, 1.5)


def test_a_complete_probe_closes_with_every_sample_and_its_size_ratio() -> None:
    book = ProbeBook(4)
    book.open(30.0)
    for i, v in BASE.items():
        book.add(i, result(v, CUTS[i] // 4, cached=i != 2))
    probe, record = book.close(CUTS, percent, 1.5)
    assert probe.complete
    assert probe.mean == pytest.approx(95.0)
    assert probe.worst == pytest.approx(92.0)
    assert probe.percent == pytest.approx(25.0)
    assert probe.seconds == 1.5
    assert record.samples == (96.0, 92.0, 98.0, 94.0)
    assert record.paired_with is None
    assert record.cached is False  # sample 2 was encoded
    assert book.records == [record]


def test_without_a_complete_probe_far_samples_settle_on_their_plain_mean() -> None:
    book = ProbeBook(4)
    book.open(20.0)
    book.add(0, result(99.0, 500))
    assert not book.may_stop(95.0)  # one sample says nothing
    book.add(2, result(99.1, 900))
    assert book.may_stop(95.0)
    probe, record = book.close(CUTS, percent, 0.0)
    assert not probe.complete
    assert probe.mean == pytest.approx(99.05)
    assert record.paired_with is None
    assert book.settled == 1


def test_after_a_complete_probe_two_samples_stand_for_all_four() -> None:
    book = ProbeBook(4)
    complete_probe(book, 30.0)
    step = 0.5  # a few CRF higher: every sample further from 100 by e^0.5
    book.open(34.0)
    book.add(0, result(moved(BASE[0], step), CUTS[0] // 8))
    book.add(2, result(moved(BASE[2], step), CUTS[2] // 8))
    assert book.may_stop(95.0)  # far below the target, whatever the plain mean of 0 and 2 says
    probe, record = book.close(CUTS, percent, 0.0)
    truth = sum(moved(v, step) for v in BASE.values()) / 4
    assert probe.mean == pytest.approx(truth, abs=1e-3)
    assert probe.mean < 95.0 < (moved(BASE[0], step) + moved(BASE[2], step)) / 2
    assert probe.worst == pytest.approx(moved(BASE[1], step), abs=1e-3)
    assert probe.percent == pytest.approx(12.5)  # the scored samples' ratio, for every sample
    assert record.paired_with == 30.0
    assert record.samples == pytest.approx([moved(BASE[0], step), moved(BASE[2], step)])


def test_a_completed_probe_replaces_its_partial_record() -> None:
    book = ProbeBook(4)
    complete_probe(book, 30.0)
    book.open(34.0)
    book.add(0, result(moved(BASE[0], 0.5), 100))
    book.add(2, result(moved(BASE[2], 0.5), 100))
    assert book.may_stop(95.0)
    book.close(CUTS, percent, 0.0)
    complete_probe(book, 34.0, step=0.5)
    assert [(r.crf, len(r.samples), r.paired_with) for r in book.records] == [
        (30.0, 4, None),
        (34.0, 4, None),
    ]


def test_a_new_plan_forgets_the_probes_and_pairs_with_none_of_them() -> None:
    book = ProbeBook(4)
    complete_probe(book, 30.0)
    book.clear(1)
    assert book.records == []
    book.open(34.0)
    book.add(0, result(90.0, 100))
    probe, record = book.close({0: 1000}, percent, 0.0)
    assert probe.complete
    assert record.paired_with is None


def test_without_pairing_the_same_samples_settle_on_their_plain_mean_alone() -> None:
    for pairing, settles in ((True, True), (False, False)):
        book = ProbeBook(4, pairing=pairing)
        complete_probe(book, 30.0)
        book.open(31.0)
        # a step just below the target: paired, clearly a fail; alone, two samples
        # within 1.5 VMAF of the target settle nothing
        book.add(0, result(moved(BASE[0], 0.3), 100))
        book.add(2, result(moved(BASE[2], 0.3), 100))
        assert book.may_stop(95.0) is settles
