"""Build-to-build reuse and layer-order advice over deterministic series of builds
(layerlab/samples/builds.py), with expected figures computed from the writer's own layer
sizes; the advice is produced with ``layerlab.rewrite`` and measured again."""

from __future__ import annotations

import dataclasses

import pytest

from layerlab.samples.builds import BUILDS, layer_sizes, write_series

import layerlab
from layerlab.analysis.layerorder import layer_order_advice
from layerlab.analysis.reuse import ReuseInputError, build_reuse
from layerlab.errors import LayerlabError, RewriteError
from layerlab.sources import open_image

STABLE_ABOVE_APP = [2, 3, 4]  # curl, jq, app.conf: stable, above the changing COPY app


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    paths = write_series(tmp_path_factory.mktemp("series"))
    return [open_image(str(p)) for p in paths]


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    paths = write_series(tmp_path_factory.mktemp("blocked"), blocked=True)
    return [open_image(str(p)) for p in paths]


# -- measured -------------------------------------------------------------------------
def test_each_build_against_the_previous(series):
    result = build_reuse(series)
    sizes = [layer_sizes(n) for n in range(BUILDS)]
    first = result.builds[0]
    assert (first.first_diverging, first.reused, first.rebuilt) == (None, 0, (0, 1, 2, 3, 4))
    assert first.pushed == (0, 1, 2, 3, 4)
    assert first.pushed_bytes == first.pulled_bytes == sum(sizes[0]) == 57344
    assert first.cache_hit_rate == 0.0
    pushed_total, pulled_total = sum(sizes[0]), sum(sizes[0])
    for n in range(1, BUILDS):
        b = result.builds[n]
        assert (b.position, b.label, b.layers) == (n, f"app:{n + 1}", 5)
        assert (b.first_diverging, b.reused, b.rebuilt) == (1, 1, (1, 2, 3, 4))
        assert b.pushed == (1,) and b.pushed_bytes == sizes[n][1] == 5120 + 512 * n
        assert b.pulled_bytes == sum(sizes[n][1:]) == 36352 + 512 * n
        assert b.cache_hit_rate == 0.2
        pushed_total += sizes[n][1]
        pulled_total += sum(sizes[n][1:])
        assert (b.total_pushed_bytes, b.total_pulled_bytes) == (pushed_total, pulled_total)
        assert b.total_cache_hit_rate == 0.2
    assert (result.pushed_bytes, result.pulled_bytes) == (82944, 207872)
    assert result.cache_hit_rate == 0.2
    assert result.to_json()["totals"] == {
        "builds": 5, "layers": 25, "reused": 4, "naive_bytes": 291840,
        "pushed_bytes": 82944, "pulled_bytes": 207872, "cache_hit_rate": 0.2}


def test_identical_build_and_longer_build(series, blocked):
    # build 1 again (nothing changes), then build 1 with two more layers on top
    result = build_reuse([series[0], series[1], series[1], blocked[1]])
    same, longer = result.builds[2], result.builds[3]
    assert (same.first_diverging, same.reused, same.rebuilt, same.pushed) == (None, 5, (), ())
    assert (same.pushed_bytes, same.pulled_bytes, same.cache_hit_rate) == (0, 0, 1.0)
    sizes = layer_sizes(1, blocked=True)
    assert (longer.first_diverging, longer.reused, longer.rebuilt) == (5, 5, (5, 6))
    assert longer.pushed == (5, 6) and longer.pushed_bytes == longer.pulled_bytes == sum(sizes[5:])
    # running rate over the builds after the first: (1 + 5 + 5) / (5 + 5 + 7)
    assert longer.total_cache_hit_rate == 11 / 17
    assert [b.label for b in result.builds] == ["app:1", "app:2", "app:2#2", "app:2#3"]


def test_layers_without_diff_id_compare_by_digest(series):
    def digests_only(image):
        return dataclasses.replace(image, layers=tuple(
            dataclasses.replace(layer, diff_id=None) for layer in image.layers))

    result = build_reuse([digests_only(series[0]), digests_only(series[1])])
    assert (result.builds[1].first_diverging, result.builds[1].reused) == (1, 1)


def test_a_series_needs_two_builds(series):
    with pytest.raises(ReuseInputError, match=r"^build reuse needs at least two builds, got 1$"):
        build_reuse(series[:1])
    assert issubclass(ReuseInputError, LayerlabError)
    with pytest.raises(ReuseInputError, match="got 0"):
        layer_order_advice([])


def test_frame_plot_and_html(series):
    result = build_reuse(series)
    frame = result.to_frame()
    assert list(frame.index) == [f"app:{n}" for n in range(1, 6)]
    assert list(frame["pushed_bytes"]) == [57344, 5632, 6144, 6656, 7168]
    assert list(frame["first_diverging"].iloc[1:]) == [1, 1, 1, 1]
    fig = result.plot()
    assert [t.name for t in fig.data] == ["pushed", "pulled", "cache-hit rate",
                                          "first diverging layer", "layers"]
    assert list(fig.data[2].y) == [0.0, 0.2, 0.2, 0.2, 0.2]
    html = result._repr_html_()
    assert "Build-to-build reuse" in html and "<td style=\"text-align:right\">57.3 kB</td>" in html
    assert layerlab.build_reuse is build_reuse


# -- advice ---------------------------------------------------------------------------
def test_advice_moves_stable_layers_below_the_changing_one(series):
    advice = build_reuse(series).order_advice()
    assert advice.advised and advice.order == (0, 2, 3, 4, 1)
    assert (advice.moved, advice.moved_before) == ((2, 3, 4), (1,))
    assert [s.changes for s in advice.layers] == [0, 4, 0, 0, 0]
    assert [s.position for s in advice.layers] == [0, 4, 1, 2, 3]
    assert advice.conflicts == () and advice.blocked == ()
    stable = sum(layer_sizes(0)[i] for i in STABLE_ABOVE_APP)  # the same in every build
    assert stable == 31232
    assert advice.saved_pulled_bytes == 4 * stable and advice.saved_pushed_bytes == 0
    assert advice.saved_bytes_per_build == 31232.0
    assert advice.before == {"pushed_bytes": 82944, "pulled_bytes": 207872,
                             "cache_hit_rate": 0.2}
    assert advice.after == {"pushed_bytes": 82944, "pulled_bytes": 82944,
                            "cache_hit_rate": 0.8}
    for n, b in enumerate(advice.builds[1:], 1):
        assert b.before.pulled_bytes - b.after.pulled_bytes == stable
        assert (b.before.reused, b.after.reused) == (1, 4)
        assert b.after.pulled_bytes == b.after.pushed_bytes == layer_sizes(n)[1]
    assert advice.message == ("moving layers 2, 3, 4 before layer 1 would have saved 31.2 kB "
                              "per build over these 4 rebuilds (124.9 kB pulled, 0 B pushed "
                              "in all)")


def test_advice_keeps_layers_that_do_not_commute(blocked):
    advice = layer_order_advice(blocked)
    assert advice.order == (0, 2, 3, 4, 1, 5, 6)
    assert [(c.a, c.b, c.reason) for c in advice.conflicts] == [
        (1, 5, "one layer whites out app/README.md, which the other writes"),
        (1, 6, "both layers have app/README.md (entry)"),
        (5, 6, "one layer whites out app/README.md, which the other writes")]
    assert [(c.a, c.b) for c in advice.blocked] == [(1, 5), (1, 6)]
    where = {src: pos for pos, src in enumerate(advice.order)}
    for c in advice.conflicts:  # a pair sharing a path or a whiteout is never swapped
        assert where[c.a] < where[c.b]
    assert advice.saved_pulled_bytes == 4 * 31232
    assert advice.to_json()["blocked"][0] == {
        "a": 1, "b": 5, "reason": "one layer whites out app/README.md, which the other writes",
        "build": "app:1"}


@pytest.mark.parametrize("which", ["series", "blocked"])
def test_rewriting_every_build_gives_the_replayed_figures(which, request, tmp_path):
    images = request.getfixturevalue(which)
    advice = layer_order_advice(images)
    rewritten = []
    for n, image in enumerate(images):
        result = layerlab.rewrite(image, reorder=list(advice.order), workdir=str(tmp_path / str(n)))
        assert [layer.diff_id for layer in result.image.layers] == \
            [image.layers[i].diff_id for i in advice.order]
        rewritten.append(result.image)
    measured = build_reuse(rewritten)
    assert [(b.pushed_bytes, b.pulled_bytes, b.reused) for b in measured.builds] == \
        [(b.after.pushed_bytes, b.after.pulled_bytes, b.after.reused) for b in advice.builds]
    assert measured.pulled_bytes == advice.after["pulled_bytes"]
    assert measured.pushed_bytes == advice.after["pushed_bytes"]
    # measured again, the rewritten series is already in the best order
    again = layer_order_advice(rewritten)
    assert not again.advised and again.order == tuple(range(len(advice.order)))
    assert again.message == "the layers are already in the best order the commute rule allows"


def test_the_rewrite_refuses_what_the_advice_keeps(blocked, tmp_path):
    # moving the whiteout layer 5 below COPY app (1) is what the advice refused
    with pytest.raises(RewriteError, match="layers 1 and 5 do not commute"):
        layerlab.rewrite(blocked[-1], reorder=[0, 2, 3, 4, 5, 1, 6], workdir=str(tmp_path))


def test_builds_of_another_shape_are_replayed_unchanged(series, blocked):
    advice = layer_order_advice([blocked[0], *series[1:]])
    assert advice.unmatched_builds == (0,)
    assert advice.order == (0, 2, 3, 4, 1)
    first = advice.builds[0]
    assert not first.reordered and first.before == first.after
    # build 1 has nothing in common order-wise with an unmatched build: every layer counts
    # as changed there, so the stable layers have 0 changes from build 2 on only
    assert [s.changes for s in advice.layers] == [1, 4, 1, 1, 1]


def test_advice_json_and_frame(series):
    advice = layer_order_advice(series)
    data = advice.to_json()
    assert set(data) == {"advised", "order", "message", "moved", "moved_before", "layers",
                         "blocked", "unmatched_builds", "builds", "totals"}
    assert data["layers"][1] == {"index": 1, "created_by": "COPY app /app # buildkit",
                                 "instruction": "COPY", "size": 7168, "changes": 4,
                                 "stable": False, "position": 4}
    assert data["totals"]["rebuilds"] == 4
    frame = advice.to_frame()
    assert list(frame["after_pulled_bytes"]) == [57344, 5632, 6144, 6656, 7168]
    assert "Layer-order advice" in advice._repr_html_()


def test_no_advice_when_no_order_sends_less(tmp_path):
    # A (large) changes in builds 1 and 2, B (small) in build 3: B first would make build
    # 3 pull A again, which costs more than builds 1 and 2 pulling B
    from analysis_images import write_archive

    def build(n):
        a = ("file", "a/data", bytes([65 + min(n, 2)]) * 20000)
        b = ("file", "b/data", bytes([66 + (n == 3)]) * 1000)
        path = write_archive(tmp_path / f"{n}.tar", [[a], [b]], tag=f"ab:{n}",
                             created_by=["COPY a /a # buildkit", "COPY b /b # buildkit"])
        return open_image(str(path))

    advice = layer_order_advice([build(n) for n in range(4)])
    assert [s.changes for s in advice.layers] == [2, 1]
    assert not advice.advised and advice.order == (0, 1) and advice._proposed == (1, 0)
    assert advice.message == "no layer order saves bytes over these builds (keep the order)"
    assert advice.before == advice.after


def test_no_advice_without_two_comparable_builds(series, blocked):
    advice = layer_order_advice([blocked[0], series[1]])
    assert advice.unmatched_builds == (0,) and not advice.advised and advice.order == tuple(range(5))
    assert advice.message.startswith("no two consecutive builds have the latest build's")
