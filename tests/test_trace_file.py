"""visattn.save / visattn.load: one analysis in one .npz, read back exactly, for every
record kind; the export's arrays.npz is that file; `visattn view` makes the viewer of one."""
import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

import visattn
from visattn import cli, export, trace_file, zoo
from visattn.preprocess import Preprocess
from visattn.records import KINDS, Record, Trace, view_of
from helpers import random_photo

PHOTO = random_photo(70, 96, 7)
SMALL_SEG = Preprocess(size=(96, 384), mode="keep_ratio")


def _traces():
    """Bundled networks with their weights, and random-weight networks whose record kinds
    no bundled one has (BoTNet's relative positions, CCNet's two hops, DNL's unary map,
    DANet's channel affinity)."""
    for card in zoo.cards():
        if card.availability() == "bundled":
            yield visattn.analyze(PHOTO, card.name)
    yield visattn.analyze(PHOTO, "botnet26t_256", pretrained=False)
    for name in ("dnl_r50_d8_ade20k", "ccnet_r50_d8_ade20k", "danet_r50_d8_ade20k"):
        yield visattn.analyze(PHOTO, name, pretrained=False, preprocess=SMALL_SEG)


@pytest.fixture(scope="module")
def traces():
    return list(_traces())


def _same_record(a: Record, b: Record) -> None:
    assert type(a) is type(b) and a.key == b.key
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), (a.key, f.name)
        elif isinstance(x, Record):
            _same_record(x, y)
        elif dataclasses.is_dataclass(x):
            assert type(x) is type(y)
            for g in dataclasses.fields(x):
                assert np.array_equal(getattr(x, g.name), getattr(y, g.name)), (a.key, g.name)
        else:
            assert x == y, (a.key, f.name)


def _rows_equal(a, b) -> None:
    """Rows at sampled cells of every head: the loaded record computes them again."""
    h, w = a.grid
    for i in sorted({0, (h // 2) * w + w // 3, h * w - 1}):
        for head in [None, *range(min(a.heads, 3))]:
            assert np.abs(a.row(i, head) - b.row(i, head)).max() <= 1e-6


def test_every_record_kind_round_trips_exactly(traces, tmp_path):
    seen = set()
    for n, trace in enumerate(traces):
        path = tmp_path / f"{n}.npz"
        visattn.save(trace, path)
        back = visattn.load(path)
        assert isinstance(back, Trace) and back.model == trace.model
        assert back.geometry == trace.geometry and back.preprocess == trace.preprocess
        assert np.array_equal(back.image, trace.image) and back.notes == trace.notes
        assert back.prediction.top(5) == trace.prediction.top(5)
        assert [r.key for r in back] == [r.key for r in trace]
        for a, b in zip(trace, back):
            _same_record(a, b)
            seen.add(type(a).__name__)
            if view_of(a) == "pairwise":
                _rows_equal(a, b)
    own = {name for name, cls in KINDS.items() if isinstance(cls, type) and issubclass(cls, Record)
           and cls.__module__ == "visattn.records"}
    assert own <= seen, f"record kinds never round-tripped: {own - seen}"


def test_relative_positions_and_two_hops_survive(traces, tmp_path):
    """The kinds that are more than arrays: BoTNet rows need their relative-position
    tables; a two-hop record is made of two other records."""
    bot = next(t for t in traces if t.model == "botnet26t_256")
    rec = bot.select(visattn.Affinity)[0]
    back = trace_file.load(io.BytesIO(trace_file.to_bytes(bot)))[rec.key]
    assert isinstance(back.extra, visattn.RelativePosition) and back.extra_scaled == rec.extra_scaled
    # without its tables the row differs: the tables matter to the rows compared above
    bare = dataclasses.replace(back, extra=None)
    assert np.abs(bare.row(5, 0) - rec.row(5, 0)).max() > 1e-4
    cc = next(t for t in traces if t.model == "ccnet_r50_d8_ade20k")
    hop = cc.select(visattn.TwoHop)[0]
    only = dataclasses.replace(cc, records=[hop])  # its hops are not listed: saved hidden
    loaded = trace_file.load(io.BytesIO(trace_file.to_bytes(only)))
    assert [r.key for r in loaded] == [hop.key]
    _rows_equal(hop, loaded[hop.key])


def test_the_file_holds_no_pickle_and_says_what_it_is(traces, tmp_path):
    path = tmp_path / "t.npz"
    visattn.save(traces[0], path)
    with np.load(path, allow_pickle=False) as npz:  # every member loads without pickle
        header = json.loads(npz["visattn.json"].tobytes())
        assert all(npz[name].dtype != object for name in npz.files)
    assert header["format"] == "visattn.trace" and header["version"] == trace_file.VERSION


def test_files_that_are_not_traces_are_refused_with_a_sentence(traces, tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(trace_file.TraceFileError, match="no VisAttn trace"):
        visattn.load(plain)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{"visattn.json": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(trace_file.TraceFileError):
        visattn.load(pickled)
    newer = io.BytesIO(trace_file.to_bytes(traces[0]))
    with np.load(newer) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["visattn.json"].tobytes())
    header["version"] = trace_file.VERSION + 1
    arrays["visattn.json"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(trace_file.TraceFileError, match="newer VisAttn"):
        visattn.load(future)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(trace_file.TraceFileError):
        visattn.load(tmp_path / "text.npz")


def test_the_export_zips_arrays_are_a_trace_file(traces):
    trace = next(t for t in traces if t.model == "tiny_nl")
    query = export.Query(trace.select(visattn.Affinity)[0].key, 40, 30)
    with zipfile.ZipFile(io.BytesIO(export.export_zip(trace, [query]))) as zf:
        loaded = visattn.load(io.BytesIO(zf.read("arrays.npz")))
    for a, b in zip(trace, loaded):
        _same_record(a, b)
    cell = trace.geometry.to_grid(40, 30, loaded[query.layer].grid, clamp=True)
    assert np.abs(loaded[query.layer].row(cell) - trace[query.layer].row(cell)).max() <= 1e-6


def test_view_makes_the_offline_viewer_from_a_saved_trace(traces, tmp_path, capsys):
    trace = next(t for t in traces if t.model == "tiny_nl_twins")
    path = tmp_path / "photo.npz"
    visattn.save(trace, path)
    assert cli.main(["view", str(path), "--html"]) == 0
    html = (tmp_path / "photo.html").read_text()
    key = trace.select(visattn.Affinity)[0].key
    assert key in html and "tiny_nl_twins" in html
    assert cli.main(["view", str(tmp_path / "missing.npz"), "--html"]) != 0
    assert "missing.npz" in capsys.readouterr().err


def test_array_names_are_safe_whatever_a_network_calls_its_modules(traces, tmp_path):
    """A user's module path may be absolute or climb ('..'): inside the file every member
    stays a plain relative name, and the record reads back under its own key."""
    trace = next(t for t in traces if t.model == "tiny_nl")
    hostile = [dataclasses.replace(r, layer="/etc/../../passwd") for r in trace]
    path = tmp_path / "hostile.npz"
    visattn.save(dataclasses.replace(trace, records=hostile), path)
    with zipfile.ZipFile(path) as zf:
        members = zf.namelist()
    assert members and not [m for m in members if m.startswith("/") or ".." in m]
    back = visattn.load(path)
    assert [r.key for r in back] == [r.key for r in hostile]
