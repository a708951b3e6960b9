"""Study specs: validation (one line naming file and key, exit 2), the bundled paper spec,
grid expansion and groups."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sgdlab.cli import main
from sgdlab.errors import SgdlabError
from sgdlab.study.expand import expand, schedule_groups, schedule_id
from sgdlab.study.spec import load_spec, parse_spec

GOOD = """\
name = "t"
epochs = 2
seeds = 2
lr = [0.1, 1]
init = "xavier"
cost = "ce"

[[grid]]
mode = "corrected"
activation = ["sigmoid", "tanh"]
output = "sigmoid"
"""

# (what to change, the key the message must name, a phrase of the message)
BAD = [
    ("colour = 'red'\n" + GOOD, "bad.toml: colour:", "unknown key"),
    (GOOD + "colour = 'red'\n", "bad.toml: grid[1].colour:", "unknown key"),
    (GOOD.replace("epochs = 2", 'epochs = "2"'), "bad.toml: epochs:", "expected an integer"),
    (GOOD.replace("epochs = 2", "epochs = 0"), "bad.toml: epochs:", "must be > 0"),
    (GOOD.replace("epochs = 2", "epochs = 2.5"), "bad.toml: epochs:", "expected an integer"),
    (GOOD.replace('activation = ["sigmoid", "tanh"]', "activation = []"), "bad.toml: grid[1].activation:",
     "empty axis"),
    (GOOD.replace("lr = [0.1, 1]", "lr = []"), "bad.toml: lr:", "empty axis"),
    (GOOD + "lr = [0.1, -1]\n", "bad.toml: grid[1].lr:", "must be > 0, got -1"),
    (GOOD.replace("lr = [0.1, 1]", "lr = [0]"), "bad.toml: lr:", "must be > 0, got 0"),
    (GOOD.replace("lr = [0.1, 1]", 'lr = ["fast"]'), "bad.toml: lr:", "expected numbers"),
    (GOOD.replace("lr = [0.1, 1]", "lr = [0.1, 0.1]"), "bad.toml: lr:", "duplicate"),
    (GOOD.replace('cost = "ce"', 'cost = "cce"'), "bad.toml: cost:", "needs a softmax output"),
    (GOOD + 'cost = ["ce", "cce"]\n', "bad.toml: grid[1].cost:", "needs a softmax output"),
    (GOOD.replace('output = "sigmoid"', 'output = "same"') + 'cost = "cce"\n', "bad.toml: grid[1].cost:",
     "needs a softmax output"),
    (GOOD.replace('"tanh"]', '"swish"]'), "bad.toml: grid[1].activation:", "unknown value 'swish'"),
    (GOOD.replace('init = "xavier"', 'init = "zeros"'), "bad.toml: init:", "unknown value"),
    (GOOD.replace('init = "xavier"\n', ""), "bad.toml: grid[1].init:", "missing"),
    (GOOD.replace("seeds = 2", "seeds = 0"), "bad.toml: seeds:", "must be >= 1"),
    (GOOD.replace("seeds = 2", "seeds = [1, 1]"), "bad.toml: seeds:", "duplicate"),
    (GOOD.replace("seeds = 2", "seeds = true"), "bad.toml: seeds:", "expected a count"),
    ('split = [0.5, 0.5]\n' + GOOD, "bad.toml: split:", "three numbers"),
    ('split = [0.7, 0.2, 0.2]\n' + GOOD, "bad.toml: split:", "summing to 1"),
    ('hidden = 32\n' + GOOD, "bad.toml: hidden:", "list of layer sizes"),
    ('hidden = [32, 0]\n' + GOOD, "bad.toml: hidden:", "positive integers"),
    ('dtype = "float16"\n' + GOOD, "bad.toml: dtype:", "unknown value"),
    ('dataset = "mnist"\n' + GOOD, "bad.toml: dataset:", "unknown dataset"),
    ('momentum = 1.0\n' + GOOD, "bad.toml: momentum:", "must be in [0, 1)"),
    ('l2 = -0.1\n' + GOOD, "bad.toml: l2:", "must be >= 0"),
    ('patience = 0\n' + GOOD, "bad.toml: patience:", "must be > 0"),
    (GOOD.replace('mode = "corrected"', 'mode = "a b"'), "bad.toml: grid[1].mode:", "letters, digits"),
    (GOOD + GOOD[GOOD.index("[[grid]]"):], "bad.toml: grid[2]:", "repeats runs of grid[1]"),
    ("grid = 3\n" + GOOD.split("[[grid]]")[0], "bad.toml: grid:", "[[grid]] blocks"),
    (GOOD.replace("epochs = 2", "epochs = "), "bad.toml: not valid TOML:", "line"),
]


@pytest.mark.parametrize("text,key,phrase", BAD, ids=[f"{i}:{b[1].split(': ')[1]}" for i, b in enumerate(BAD)])
def test_bad_spec_exits_2_naming_file_and_key(tmp_path, capsys, text, key, phrase):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    rc = main(["study", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"sgdlab: error: {key}"), lines[0]
    assert phrase in lines[0]
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was created


def test_bad_spec_in_a_real_subprocess(tmp_path):
    spec = tmp_path / "neg.toml"
    spec.write_text(GOOD + "lr = [-1]\n")
    p = subprocess.run([sys.executable, "-m", "sgdlab", "study", str(spec), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == "sgdlab: error: neg.toml: grid[1].lr: must be > 0, got -1"
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_missing_spec_file(tmp_path, capsys):
    assert main(["study", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "no such spec file" in capsys.readouterr().err


def test_reproduce_flags_are_checked(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--seeds", "0"])
    assert e.value.code == 2
    assert "--seeds" in capsys.readouterr().err


def test_paper_spec_is_the_papers_study():
    from sgdlab.study.spec import paper_spec_path
    from sgdlab.data import load_dataset

    spec = load_spec(paper_spec_path())
    d = spec.to_dict()
    assert (d["dataset"], d["hidden"], d["epochs"], d["batch_size"], d["split"], d["split_seed"]) == \
        ("digits", [32, 16], 30, 10, [0.6, 0.2, 0.2], 0)
    assert d["seeds"] == [0, 1, 2, 3, 4] and d["modes"] == ["paper", "corrected"]
    for b in d["grid"]:
        assert b["lr"] == [1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001] and b["init"] == ["gaussian", "xavier"]
    paper, corr_sig, corr_soft, conventions = d["grid"]
    for b in (paper, corr_sig, corr_soft):
        assert b["activation"] == ["sigmoid", "tanh", "relu"] and "ce_outside" not in b  # clip
    # the cells whose outputs leave (0, 1) under ce, under the two other conventions
    assert (conventions["mode"], conventions["cost"], conventions["activation"], conventions["output"],
            conventions["ce_outside"]) == ("paper", ["ce"], ["tanh", "relu"], ["same"], ["nielsen", "none"])
    assert (paper["mode"], paper["cost"], paper["output"]) == ("paper", ["mse", "ce"], ["same"])
    assert (corr_sig["mode"], corr_sig["cost"], corr_sig["output"]) == ("corrected", ["mse", "ce"], ["sigmoid"])
    assert (corr_soft["mode"], corr_soft["cost"], corr_soft["output"]) == ("corrected", ["cce"], ["softmax"])
    runs = expand(spec)
    # paper: 2 costs x 3 act x 2 init x 6 lr x 5 seeds, plus 2 conventions x 2 act x 2 init x 6 lr
    # x 5 seeds; corrected: 3 costs x 3 act x 2 init x 6 lr x 5 seeds
    assert sum(r.mode == "paper" for r in runs) == 360 + 240 and sum(r.mode == "corrected" for r in runs) == 540
    assert len({r.key for r in runs}) == 1140
    data = load_dataset(spec.dataset, spec.split, spec.split_seed)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1078, 360, 359)


def test_groups_share_the_minibatch_order_and_cover_every_run():
    spec = load_spec(__import__("sgdlab.study.spec", fromlist=["x"]).paper_spec_path())
    runs = expand(spec)
    gs = schedule_groups(runs)
    assert sorted(r.index for g in gs for r in g.runs) == list(range(len(runs)))
    assert len({g.id for g in gs}) == len(gs)
    for g in gs:
        shared = {(r.config.seed, r.config.activation, r.config.output_activation, r.config.batch_size,
                   r.config.epochs) for r in g.runs}
        assert len(shared) == 1
        assert all(schedule_id(r.config) == g.id for r in g.runs)
    # 3 hidden activations x (paper: same output; corrected: sigmoid, softmax) minus the
    # sigmoid/sigmoid overlap = 8 groups per seed
    assert len(gs) == 8 * 5


def test_top_level_axes_are_defaults_and_blocks_override(tmp_path):
    spec = parse_spec(GOOD + '\n[[grid]]\nmode = "x"\nactivation = "relu"\noutput = "softmax"\ncost = "cce"\n'
                      'lr = 0.5\n', source="s.toml")
    a, b = spec.grid
    assert a.lr == (0.1, 1.0) and b.lr == (0.5,)
    assert b.cost == ("cce",) and a.cost == ("ce",)
    assert a.momentum == (0.0,) and a.bias_init == ("normal",)
    assert spec.modes == ["corrected", "x"]
    assert len(expand(spec)) == (2 * 2 + 1) * 2


def test_flat_spec_without_grid_blocks():
    spec = parse_spec("seeds = [3, 7]\nlr = 0.1\ncost = 'mse'\nactivation = 'tanh'\ninit = 'gaussian'\n", source="f.toml")
    assert spec.name == "f" and spec.modes == ["default"] and spec.seeds == (3, 7)
    assert [r.config.seed for r in expand(spec)] == [3, 7]


def test_digest_ignores_formatting_but_not_content():
    a = parse_spec(GOOD, source="a.toml")
    b = parse_spec("# a comment\n" + GOOD.replace("lr = [0.1, 1]", "lr = [0.1, 1.0]"), source="b.toml")
    assert a.digest() == b.digest()
    assert parse_spec(GOOD, overrides={"seeds": 3}).digest() != a.digest()
    assert parse_spec(GOOD.replace("epochs = 2", "epochs = 3")).digest() != a.digest()


def test_overrides_are_validated():
    with pytest.raises(SgdlabError, match=r"p.toml: epochs: must be > 0"):
        parse_spec(GOOD, source="p.toml", overrides={"epochs": 0})


def test_csv_dataset_is_found_beside_the_spec(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    (tmp_path / "s.toml").write_text('dataset = "d.csv"\n' + GOOD)
    spec = load_spec(tmp_path / "s.toml")
    assert spec.dataset == str((tmp_path / "d.csv").resolve())


def test_spec_roundtrip_through_dict():
    from sgdlab.study.spec import StudySpec

    spec = parse_spec(textwrap.dedent(GOOD))
    again = StudySpec.from_dict(spec.to_dict())
    assert again == spec and again.digest() == spec.digest()
