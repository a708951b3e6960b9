"""Issue 15, item by item: hostile or mistaken input is one line (exit 2), bounded in
memory, and never deletes, overwrites or mixes what the user did not make.

Each test names the item of the issue it covers; each fails on the sgdlab before it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sqlite3
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from sgdlab.cli import main
from sgdlab.errors import SgdlabError
from sgdlab.study import Store
from _helpers import comparable

SPEC = """\
name = "g"
epochs = 2
hidden = [8]
seeds = 3
lr = [0.5, 1.0]
init = "xavier"
cost = "ce"
activation = "sigmoid"
output = "sigmoid"
"""


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("sgdlab: error: "), err
    assert "Traceback" not in err
    return lines[0]


def study(*argv) -> int:
    return main(["study", *map(str, argv), "--jobs", "1", "--quiet", "--no-report"])


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text(SPEC)
    return p


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def blobs_csv(path, n=120, seed=0, label_at=1, labels=("=cat,x", "dog")):
    """Two separable classes; the label column is not the last one."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    header = ["a", "b", "c"]
    header.insert(label_at, "label")
    rows = []
    for x, k in zip(X, y):
        r = [f"{v:.6f}" for v in x]
        r.insert(label_at, labels[k])
        rows.append(r)
    write_csv(path, header, rows)
    return [labels[k] for k in y]


# --------------------------------------------------------------------------- 1. user files

@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs", "a/b", "..", ".hidden"])
def test_1_spec_name_must_be_a_plain_folder_name(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "s.toml"
    p.write_text(SPEC.replace('name = "g"', f"name = {json.dumps(name)}"))
    assert main(["study", str(p), "--quiet"]) == 2
    assert "not a plain folder name" in one_line(capsys.readouterr().err)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["s.toml"]


def test_1_a_folder_sgdlab_did_not_make_is_refused_and_untouched(tmp_path, spec, capsys):
    proj = tmp_path / "proj"
    (proj / "tables").mkdir(parents=True)
    (proj / "tables" / "mine.csv").write_text("precious\n")
    (proj / "report.md").write_text("my report\n")
    assert study(spec, "--out", proj) == 2
    assert "not empty" in one_line(capsys.readouterr().err)
    assert (proj / "tables" / "mine.csv").read_text() == "precious\n"
    assert (proj / "report.md").read_text() == "my report\n"
    assert sorted(p.name for p in proj.iterdir()) == ["report.md", "tables"]


def test_1_rendering_deletes_only_its_own_files(tmp_path, spec, capsys):
    out = tmp_path / "out"
    assert main(["study", str(spec), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    manifest = json.loads((out / ".sgdlab-manifest.json").read_text())["files"]
    assert "report.html" in manifest and "results.sqlite" in manifest
    assert any(f.startswith("tables/") for f in manifest) and any(f.startswith("figures/") for f in manifest)
    (out / "tables" / "notes.txt").write_text("mine")  # not a kind rendering writes: left alone
    assert main(["report", str(out)]) == 0
    assert (out / "tables" / "notes.txt").read_text() == "mine"
    (out / "figures" / "mine.png").write_bytes(b"mine")  # a kind it writes: refused, not overwritten
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert "mine.png was not written by sgdlab" in one_line(capsys.readouterr().err)
    assert (out / "figures" / "mine.png").read_bytes() == b"mine"


def test_1_a_folder_of_an_older_sgdlab_is_adopted(tmp_path, spec):
    out = tmp_path / "out"
    assert main(["study", str(spec), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    (out / ".sgdlab-manifest.json").unlink()  # as an sgdlab before manifests left it
    assert main(["report", str(out)]) == 0
    assert (out / ".sgdlab-manifest.json").is_file()


# --------------------------------------------------------------------------- 2. predict columns

def test_2_predict_takes_csv_features_by_name(tmp_path, capsys):
    data = tmp_path / "d.csv"
    truth = blobs_csv(data)
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", str(data), "--label", "label", "--layers", "8", "--epochs", "30",
                 "--save", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), "--input", str(data)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    got = [r[0].removeprefix("'") for r in rows[1:]]
    assert np.mean([g == t for g, t in zip(got, truth)]) > 0.9  # was 1/3: the label was read as a feature
    # the same columns reordered give the same predictions
    with open(data, newline="") as f:
        table = list(csv.DictReader(f))
    write_csv(tmp_path / "r.csv", ["c", "b", "a"], [[r["c"], r["b"], r["a"]] for r in table])
    assert main(["predict", str(model), "--input", str(tmp_path / "r.csv")]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:] == rows[1:]
    # a missing or a foreign column is one line
    write_csv(tmp_path / "x.csv", ["a", "b", "id"], [[r["a"], r["b"], 1] for r in table])
    assert main(["predict", str(model), "--input", str(tmp_path / "x.csv")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "missing 'c'" in line and "'id'" in line


# --------------------------------------------------------------------------- 3. changed data

def test_3_resume_refuses_changed_data_naming_it(tmp_path, capsys):
    data = tmp_path / "d.csv"
    blobs_csv(data, labels=("x", "y"))
    spec = tmp_path / "c.toml"
    spec.write_text(SPEC.replace('name = "g"', f'name = "c"\ndataset = "{data.name}"\nlabel = "label"').replace("seeds = 3",
                                                                                                 "seeds = 2"))
    out = tmp_path / "out"
    assert study(spec, "--out", out) == 0
    with Store(out) as st:
        before = comparable(st.records())
        assert len(st.data_digest()) == 64
    blobs_csv(data, seed=1, labels=("x", "y"))  # same path, other content
    capsys.readouterr()
    assert study(spec, "--out", out, "--resume") == 2
    assert f"dataset {data} is not the data" in one_line(capsys.readouterr().err)
    with Store(out) as st:
        assert comparable(st.records()) == before


def test_3_an_old_store_without_digest_gets_one_on_resume(tmp_path, spec, capsys):
    out = tmp_path / "out"
    assert study(spec, "--out", out) == 0
    con = sqlite3.connect(out / "results.sqlite")
    with con:
        con.execute("DELETE FROM meta WHERE key = 'data_digest'")
    con.close()
    assert study(spec, "--out", out, "--resume") == 0
    assert "did not record its dataset's digest" in capsys.readouterr().err
    with Store(out) as st:
        assert st.data_digest() is not None


# --------------------------------------------------------------------------- 4. one writer

def test_4_a_second_writer_is_refused_naming_the_first(tmp_path, spec, capsys):
    from sgdlab.study.lock import FolderLock

    out = tmp_path / "out"
    assert study(spec, "--out", out) == 0
    with Store(out) as st:
        before = comparable(st.records())
    with FolderLock(out, "sgdlab study g"):  # as if a study were running there
        assert study(spec, "--out", out, "--force") == 2
        assert f"in use by another sgdlab (pid {os.getpid()}" in one_line(capsys.readouterr().err)
        assert main(["report", str(out)]) == 2
        one_line(capsys.readouterr().err)
    with Store(out) as st:
        assert comparable(st.records()) == before


# --------------------------------------------------------------------------- 5. bombs

def npy_header(shape, descr="<f8") -> bytes:
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    d = d + " " * (63 - (10 + len(d)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()


def meta_member(sizes) -> bytes:
    buf = io.BytesIO()
    meta = {"format": "sgdlab-network", "format_version": 1, "sizes": sizes, "activation": "sigmoid",
            "output": "sigmoid", "cost": "ce", "dtype": "float64", "classes": None, "extra": {}}
    np.lib.format.write_array(buf, np.array(json.dumps(meta)))
    return buf.getvalue()


def peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


def test_5_a_model_header_claiming_1e12_elements_is_refused_before_allocating(tmp_path, capsys):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.npy", meta_member([1_000_000, 1_000_000]))
        zf.writestr("W0.npy", npy_header((1_000_000, 1_000_000)) + b"\0" * 64)
        zf.writestr("b0.npy", npy_header((1_000_000,)) + b"\0" * 64)
    assert peak_mb(lambda: main(["predict", str(path), "--input", "x.csv"])) < 20
    assert "not a valid sgdlab model file" in one_line(capsys.readouterr().err)


def test_5_a_compression_bomb_model_is_refused_with_little_memory(tmp_path, capsys):
    path = tmp_path / "bomb.npz"
    n = 40_000_000  # 320 MB of zeros, ~0.3 MB compressed
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.npy", meta_member([n, 1]))
        with zf.open("W0.npy", "w", force_zip64=True) as f:
            f.write(npy_header((n, 1)))
            chunk = b"\0" * (8 << 20)
            for _ in range(n * 8 // len(chunk)):
                f.write(chunk)
        zf.writestr("b0.npy", npy_header((1,)) + b"\0" * 8)
    assert path.stat().st_size < 2_000_000
    assert peak_mb(lambda: main(["predict", str(path), "--input", "x.csv"])) < 40
    assert "compression bomb" in one_line(capsys.readouterr().err)


def test_5_a_gzipped_idx_bomb_is_refused_before_decompressing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SGDLAB_MAX_FILE_BYTES", str(10 << 20))
    images = tmp_path / "bomb-images-idx3-ubyte.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    with open(images, "wb") as f:
        f.write(comp.compress(b"\0\0\x08\x03" + struct.pack(">III", 100_000, 40, 50)))
        chunk = b"\0" * (8 << 20)
        for _ in range(25):  # 200 MB of zeros
            f.write(comp.compress(chunk))
        f.write(comp.flush())
    assert gzip.open(images).read(4) == b"\0\0\x08\x03"
    assert peak_mb(lambda: main(["train", "--dataset", str(images), "--epochs", "1"])) < 40
    line = one_line(capsys.readouterr().err)
    assert "declares shape (100000, 40, 50)" in line and "SGDLAB_MAX_FILE_BYTES" in line


def test_5_an_npz_dataset_declaring_more_than_it_holds_is_refused(tmp_path, capsys):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", npy_header((10**7, 10**5)) + b"\0" * 64)
        zf.writestr("y.npy", npy_header((10**7,), "<i8") + b"\0" * 64)
    assert peak_mb(lambda: main(["train", "--dataset", str(path), "--epochs", "1"])) < 20
    one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- 6. labels

@pytest.mark.parametrize("bad", ["nan", "NaN", ""])
def test_6_csv_missing_labels_are_refused(tmp_path, capsys, bad):
    rows = [[i, i % 2 if i != 3 else bad] for i in range(10)]
    write_csv(tmp_path / "d.csv", ["x", "y"], rows)
    assert main(["train", "--dataset", str(tmp_path / "d.csv"), "--epochs", "1"]) == 2
    assert "row 5" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("y,what", [(np.arange(8) % 2, "8 labels"), (np.arange(12) % 2, "12 labels"),
                                    (np.zeros((10, 2)), "1-D")])
def test_6_npz_labels_must_be_one_per_row(tmp_path, capsys, y, what):
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).normal(size=(10, 2)), y=y)
    assert main(["train", "--dataset", str(tmp_path / "d.npz"), "--epochs", "1"]) == 2
    assert what in one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- 7. one line, not a traceback

def test_7_huge_layers_are_refused_with_the_figure(capsys):
    assert main(["train", "--layers", "100000000", "--epochs", "1"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "needs at least" in line and "TB of memory" in line


def test_7_a_2gb_file_without_newline_is_not_read_whole(tmp_path, capsys):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GB of NUL bytes, no newline
    assert peak_mb(lambda: main(["train", "--dataset", str(big), "--epochs", "1"])) < 400
    one_line(capsys.readouterr().err)
    spec = tmp_path / "big.toml"
    os.link(big, spec)
    assert peak_mb(lambda: main(["study", str(spec), "--quiet"])) < 20
    assert "a study spec is at most" in one_line(capsys.readouterr().err)


def test_7_damaged_store_report_and_resume_are_one_line(tmp_path, spec, capsys):
    out = tmp_path / "out"
    assert study(spec, "--out", out) == 0
    con = sqlite3.connect(out / "results.sqlite")
    with con:
        con.execute("DELETE FROM meta WHERE key = 'spec_json'")
    con.close()
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert "damaged study store" in one_line(capsys.readouterr().err)
    assert study(spec, "--out", out, "--resume") == 2
    assert "damaged study store" in one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- 8. grids

def test_8_a_huge_grid_is_counted_not_expanded(tmp_path, capsys):
    p = tmp_path / "huge.toml"
    p.write_text(SPEC.replace("seeds = 3", "seeds = 1000000").replace("lr = [0.5, 1.0]",
                                                                      "lr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]"))
    assert peak_mb(lambda: main(["study", str(p), "--out", str(tmp_path / "o"), "--quiet"])) < 200
    line = one_line(capsys.readouterr().err)
    assert "10,000,000 runs" in line and "--max-runs" in line
    assert not (tmp_path / "o").exists()
    p.write_text(SPEC.replace("seeds = 3", "seeds = 2000000"))
    assert main(["study", str(p), "--quiet"]) == 2
    assert "at most 1,000,000" in one_line(capsys.readouterr().err)


def test_8_max_runs_lowers_and_raises_the_limit(tmp_path, spec, capsys):
    assert study(spec, "--out", tmp_path / "o", "--max-runs", "5") == 2
    assert "6 runs, more than the limit of 5" in one_line(capsys.readouterr().err)
    assert study(spec, "--out", tmp_path / "o", "--max-runs", "6") == 0


# --------------------------------------------------------------------------- 9. atomic creation

def test_9_a_kill_during_store_creation_leaves_no_store(tmp_path, spec, monkeypatch):
    real = os.replace

    def killed(src, dst):
        if str(dst).endswith("results.sqlite"):
            raise SystemExit("killed")  # the process dies between building the store and renaming it
        real(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        study(spec, "--out", out)
    monkeypatch.setattr(os, "replace", real)
    assert not (out / "results.sqlite").exists()
    assert study(spec, "--out", out) == 0  # no --force, no --resume needed
    assert not list(out.glob(".results.sqlite.*"))


# --------------------------------------------------------------------------- 10. smaller ones

def test_10_predict_output_is_csv_and_formula_safe(tmp_path, capsys):
    data = tmp_path / "d.csv"
    blobs_csv(data, labels=("=HYPERLINK(1,2)", "-1"))
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", str(data), "--label", "label", "--layers", "8", "--epochs", "30",
                 "--save", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), "--input", str(data), "--proba"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["prediction", "p-1", "p=HYPERLINK(1,2)"]
    assert {r[0] for r in rows[1:]} == {"'=HYPERLINK(1,2)", "-1"}  # quoted comma; numbers untouched
    assert all(len(r) == 3 for r in rows)


def test_10_saved_models_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", "--epochs", "1", "--layers", "4", "--save", str(tmp_path / "m.npz")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644


def test_10_retrying_a_failed_run_equals_an_uninterrupted_run(tmp_path, spec):
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert study(spec, "--out", ref) == 0
    assert study(spec, "--out", out) == 0
    con = sqlite3.connect(out / "results.sqlite")
    with con:  # one run of a batched group failed (as a run that raised leaves it)
        key = con.execute("SELECT key FROM runs WHERE lr = 1.0 AND seed = 1").fetchone()[0]
        con.execute("UPDATE runs SET status = 'failed', history = '{}' WHERE key = ?", (key,))
    con.close()
    assert study(spec, "--out", out, "--resume") == 0
    with Store(ref) as a, Store(out) as b:
        assert comparable(b.records()) == comparable(a.records())  # equal, not within 4.4e-11
