"""qmpp from Python against the qmpp CLI: the same numbers, the same files, the same messages."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

import qmpp
from conftest import FASHION, MODELS, SAMPLES, cli_error

TOKENS = SAMPLES / "chelsea_tokens.npy"
PSALM = SAMPLES / "psalm23.safetensors"
ARRAYS = ["merged.npy", "labels.npy", "saliency.npy", "mask.npy", "mass.npy"]


def run_cli(cli, tmp_path, name, *args):
    out = tmp_path / name
    code, _, err = cli("run", *args, "--out", out, "--backend", "cpu", "--quiet")
    assert code == 0, err
    return out


def assert_same_arrays(result, folder):
    """Every array of the result equals the CLI's file bit for bit."""
    want = {"merged.npy": result.merged, "labels.npy": result.labels,
            "saliency.npy": result.saliency, "mask.npy": result.mask, "mass.npy": result.mass}
    for name, got in want.items():
        ref = np.load(folder / name)
        assert ref.shape == got.shape, name
        assert ref.dtype == got.dtype, name
        assert np.array_equal(ref, got), name


@pytest.mark.parametrize("method,extra", [
    ("quickmerge", []), ("quickmerge", ["--cluster", "agglomerative", "--temperature", "0.5"]),
    ("tome", []), ("topk", []), ("random", ["--seed", "7"]),
])
def test_merge_equals_cli_bit_for_bit(cli, tmp_path, method, extra):
    folder = run_cli(cli, tmp_path, "cli", TOKENS, "--method", method, "--budget", "0.1", *extra)
    kw = dict(method=method, budget=0.1, backend="cpu")
    for flag, key, conv in (("--cluster", "cluster", str), ("--temperature", "temperature", float),
                            ("--seed", "seed", int)):
        if flag in extra:
            kw[key] = conv(extra[extra.index(flag) + 1])
    report = json.loads((folder / "report.json").read_text())
    for given in (TOKENS, np.load(TOKENS)):  # a path, as the CLI, and an array
        r = qmpp.merge(given, **kw)
        assert r.n == 532 and r.k == 53 and r.d == 768
        assert_same_arrays(r, folder)
        for name, value in r.metrics.items():
            if not isinstance(value, list):
                assert report["metrics"][name] == pytest.approx(value, rel=0, abs=0), name


def test_defaults_are_the_clis(cli, tmp_path):
    folder = run_cli(cli, tmp_path, "cli", TOKENS)
    r = qmpp.merge(np.load(TOKENS), backend="cpu")
    assert r.k == int(0.2 * 532) and r.method == "quickmerge"
    assert_same_arrays(r, folder)


def test_hidden_states_and_labels_of_a_file(cli, tmp_path):
    folder = run_cli(cli, tmp_path, "cli", PSALM, "--tokens", "12")
    r = qmpp.merge(PSALM, k=12, backend="cpu")
    assert_same_arrays(r, folder)
    report = json.loads((folder / "report.json").read_text())
    assert r.saliency_source == report["saliency_source"] == "attention maps (L=4, H=4)"
    assert r.report()["saliency_source"] == report["saliency_source"]
    assert r.report()["text"] == report["text"]  # the token strings and merged spans
    loaded = qmpp.load(PSALM)
    assert loaded.tokens.shape == (107, 128)
    assert loaded.hidden_states.shape == (4, 107, 128)
    assert loaded.attention.shape == (4, 4, 107, 107)
    assert len(loaded.labels) == 107 and loaded.labels[0]
    # the same merge from the loaded arrays
    r2 = qmpp.merge(loaded.tokens, k=12, backend="cpu", hidden_states=loaded.hidden_states,
                    attention=loaded.attention, labels=loaded.labels)
    assert np.array_equal(r2.merged, r.merged) and np.array_equal(r2.labels, r.labels)
    r3 = qmpp.merge(PSALM, k=12, backend="cpu", tokens_only=True)
    assert "tokens" in r3.saliency_source and not np.array_equal(r3.saliency, r.saliency)


def test_batch_gives_one_result_per_item(tmp_path):
    x = np.load(TOKENS)
    batch = np.stack([x[:200], x[100:300], x[300:500]])
    rs = qmpp.merge(batch, k=20, backend="cpu")
    assert isinstance(rs, list) and len(rs) == 3
    for i, r in enumerate(rs):
        one = qmpp.merge(batch[i], k=20, backend="cpu")
        assert np.array_equal(r.merged, one.merged)
    only = qmpp.merge(batch, k=20, backend="cpu", batch=1)
    assert not isinstance(only, list) and np.array_equal(only.merged, rs[1].merged)


def test_save_writes_what_the_cli_writes(cli, tmp_path):
    folder = run_cli(cli, tmp_path, "cli", TOKENS, "--tokens", "40")
    r = qmpp.merge(TOKENS, k=40, backend="cpu")
    files = r.save(tmp_path / "py")
    cli_files = sorted(os.listdir(folder))
    assert sorted(files) == cli_files
    assert sorted(os.listdir(tmp_path / "py")) == cli_files
    for name in ARRAYS:
        assert (tmp_path / "py" / name).read_bytes() == (folder / name).read_bytes(), name
    mine, theirs = (json.loads((d / "report.json").read_text()) for d in (tmp_path / "py", folder))
    for key in ("metrics", "losses", "parameters", "method", "saliency_source", "diagnostics"):
        assert mine[key] == theirs[key], key
    with pytest.raises(qmpp.InputError, match="use --force|force"):
        r.save(tmp_path / "py")
    r.save(tmp_path / "py", force=True)
    assert r.report()["metrics"] == theirs["metrics"]


def test_results_are_views_not_copies():
    r = qmpp.merge(np.load(TOKENS), k=10, backend="cpu")
    a, b = r.merged, r.merged
    assert a.ctypes.data == b.ctypes.data  # the engine's own vector, viewed twice
    assert a.base is not None
    del r
    assert np.isfinite(a).all()  # the view keeps the result alive


def test_tome_topk_random_saliency_shortcuts():
    x = np.load(TOKENS)
    assert np.array_equal(qmpp.tome(x, k=30, backend="cpu").merged,
                          qmpp.merge(x, k=30, method="tome", backend="cpu").merged)
    assert qmpp.topk(x, k=30, backend="cpu").method == "topk"
    assert qmpp.random(x, k=30, backend="cpu", seed=3).method == "random"
    s = qmpp.saliency(x, backend="cpu")
    assert s.shape == (532,) and 0 <= s.min() and s.max() <= 1


# ---- bad input: every kind raises with the CLI's message ------------------------------------

def write_npy(path, array):
    np.save(path, array)
    return path


BAD_ARRAYS = {
    "nan": lambda: np.where(np.arange(40).reshape(8, 5) == 13, np.nan, 1.0).astype(np.float32),
    "inf": lambda: np.where(np.arange(40).reshape(8, 5) == 7, np.inf, 1.0).astype(np.float32),
    "huge64": lambda: np.where(np.arange(40).reshape(8, 5) == 3, 1e300, 1.0),
    "int": lambda: np.ones((8, 5), dtype=np.int64),
    "1d": lambda: np.ones(8, dtype=np.float32),
    "4d": lambda: np.ones((1, 2, 8, 5), dtype=np.float32),
    "zero-n": lambda: np.ones((0, 5), dtype=np.float32),
    "zero-d": lambda: np.ones((8, 0), dtype=np.float32),
}


@pytest.mark.parametrize("kind", sorted(BAD_ARRAYS))
def test_bad_arrays_raise_the_clis_message(cli, tmp_path, kind):
    a = BAD_ARRAYS[kind]()
    path = write_npy(tmp_path / f"{kind}.npy", a)
    code, _, err = cli("run", path, "--out", tmp_path / "o", "--backend", "cpu", "--tokens", "2")
    assert code == 3, err
    message = cli_error(err)
    with pytest.raises(qmpp.InputError) as e:
        qmpp.merge(path, k=2, backend="cpu")
    assert str(e.value) == message
    assert isinstance(e.value, OSError) and isinstance(e.value, ValueError)
    if kind != "int":  # the same check on the array, named "tokens" where the CLI names the file
        with pytest.raises(qmpp.InputError) as e2:
            qmpp.merge(a, k=2, backend="cpu")
        assert str(e2.value) == message.replace(str(path), "tokens")
    else:
        with pytest.raises(qmpp.InputError, match="must be floating point"):
            qmpp.merge(a, k=2, backend="cpu")


def _file(path, data):
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def _made(path, make):
    make(path)
    return path


BAD_FILES = {
    "missing": lambda d: d / "nothing.npy",
    "folder": lambda d: _made(d / "dir.npy", os.mkdir),
    "fifo": lambda d: _made(d / "pipe.npy", os.mkfifo),
    "truncated": lambda d: _file(d / "t.npy", TOKENS.read_bytes()[:1000]),
    "not-npy": lambda d: _file(d / "x.npy", "hello"),
    "bad-safetensors": lambda d: _file(d / "x.safetensors", b"\xff" * 16),
    "unknown-type": lambda d: _file(d / "x.csv", "1,2"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_the_clis_message(cli, tmp_path, kind):
    path = BAD_FILES[kind](tmp_path)
    code, _, err = cli("run", path, "--out", tmp_path / "o", "--backend", "cpu")
    assert code == 3, err
    with pytest.raises(qmpp.InputError) as e:
        qmpp.merge(path, backend="cpu")
    assert str(e.value) == cli_error(err)
    with pytest.raises(OSError):
        qmpp.load(path)


@pytest.mark.parametrize("kw,cli_args", [
    (dict(method="nope"), None),
    (dict(k=0), None),
    (dict(temperature=0.0), ["--temperature", "0"]),
    (dict(precision="fp16", backend="cpu"), ["--precision", "fp16", "--backend", "cpu"]),
    (dict(cluster="kmeans"), None),
    (dict(budget=0.5, k=None, layers=0), ["--budget", "0.5", "--layers", "0"]),
])
def test_usage_errors_are_value_errors(cli, tmp_path, kw, cli_args):
    with pytest.raises(qmpp.UsageError) as e:
        qmpp.merge(np.load(TOKENS), **kw)
    assert isinstance(e.value, ValueError)
    if cli_args:
        code, _, err = cli("run", TOKENS, "--out", tmp_path / "o", *cli_args)
        assert code in (2, 3)
        assert str(e.value) == cli_error(err)


def test_bad_hidden_states_and_labels(tmp_path):
    x = np.ones((8, 5), np.float32) + np.arange(40, dtype=np.float32).reshape(8, 5)
    with pytest.raises(qmpp.InputError, match=r"hidden_states: hidden states must be \[L, 8, 5\]"):
        qmpp.merge(x, k=2, backend="cpu", hidden_states=np.ones((2, 7, 5), np.float32))
    with pytest.raises(qmpp.InputError, match=r"attention: attention maps must be"):
        qmpp.merge(x, k=2, backend="cpu", attention=np.ones((2, 8, 7), np.float32))
    with pytest.raises(qmpp.InputError, match="labels: 3 labels for N = 8 tokens"):
        qmpp.merge(x, k=2, backend="cpu", labels=["a", "b", "c"])
    with pytest.raises(qmpp.InputError, match=r"uniforms must be 1-D"):
        qmpp.merge(x, k=2, backend="cpu", uniforms=np.ones((2, 4), np.float32))


# ---- load and save ------------------------------------------------------------------------

def test_save_and_load_round_trip(cli, tmp_path):
    x = np.random.default_rng(0).standard_normal((30, 16)).astype(np.float32)
    h = np.random.default_rng(1).standard_normal((2, 30, 16)).astype(np.float16)
    words = [f"w{i}" for i in range(30)]
    path = tmp_path / "mine.safetensors"
    qmpp.save(path, {"tokens": x, "hidden_states": h}, {"labels": words})
    got = qmpp.load(path)
    assert np.array_equal(got.tokens, x)
    assert np.array_equal(got.hidden_states, h.astype(np.float32))
    assert got.labels == words
    with pytest.raises(qmpp.InputError, match="exists"):
        qmpp.save(path, x)
    qmpp.save(tmp_path / "one.npy", x.astype(np.float64))
    assert np.array_equal(np.load(tmp_path / "one.npy"), x.astype(np.float64))
    with pytest.raises(qmpp.UsageError):
        qmpp.save(tmp_path / "two.npy", {"a": x, "b": x})
    # the CLI opens the saved file as it is, with its hidden states and labels
    folder = run_cli(cli, tmp_path, "cli", path, "--tokens", "5")
    rep = json.loads((folder / "report.json").read_text())
    assert np.array_equal(np.load(folder / "merged.npy"), qmpp.merge(path, k=5,
                                                                     backend="cpu").merged)
    assert rep["saliency_source"].startswith("hidden states")
    assert [t["text"] for t in rep["text"]["tokens"]] == words


def test_load_an_image_as_the_cli_tokenizes_it(cli, tmp_path):
    out = tmp_path / "t.npy"
    code, _, err = cli("tokenize", SAMPLES / "chelsea.png", "--out", out)
    if code != 0 and "OpenCV" in err:
        pytest.skip("built without OpenCV")
    got = qmpp.load(SAMPLES / "chelsea.png")
    assert got.kind == "image" and got.grid == (18, 28) or got.grid[0] * got.grid[1] == 532
    assert np.array_equal(got.tokens, np.load(out))
    assert got.image.shape[2] == 3 and got.image.dtype == np.uint8


# ---- a model with merging inside ------------------------------------------------------------

@pytest.mark.skipif(not FASHION.exists(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.parametrize("method", ["tome", "quickmerge"])
def test_eval_model_equals_cli(cli, tmp_path, method):
    model = MODELS / "vit-fmnist.safetensors"
    code, _, err = cli("eval", "--model", model, "--dataset", FASHION, "--limit", "6",
                       "--method", method, "--r", "8", "--backend", "cpu", "--out", tmp_path / "e")
    assert code == 0, err
    got = qmpp.eval_model(model, dataset=FASHION, limit=6, method=method, r=8,
                          out=tmp_path / "py")
    assert np.array_equal(got["logits_plain"], np.load(tmp_path / "e" / "logits_plain.npy"))
    merged = np.load(tmp_path / "e" / "logits_merged.npy")
    assert got["logits_merged"].shape == merged.shape == ((3 if method == "quickmerge" else 1), 6, 10)
    assert np.array_equal(got["logits_merged"], merged)
    assert got["seeds"] == ([0, 1, 2] if method == "quickmerge" else [0])
    ref = json.loads((tmp_path / "e" / "eval.json").read_text())
    mine = json.loads((tmp_path / "py" / "eval.json").read_text())
    for key in ("per_seed", "summary", "tokens", "flops", "seeds", "schedule", "method"):
        assert ref[key] == mine[key] == got[key], key
    assert [b["tokens_out"] for b in got["tokens"]["merged"]] == [197 - 8 * i for i in range(1, 7)]
    with pytest.raises(qmpp.UsageError, match="needs how much to merge"):
        qmpp.eval_model(model, dataset=FASHION, limit=2, method="tome")
    with pytest.raises(qmpp.UsageError, match="give one of"):
        qmpp.eval_model(model, dataset=FASHION, limit=2, r=4, budget=0.5)
    with pytest.raises(qmpp.InputError):
        qmpp.eval_model(tmp_path / "missing.safetensors", dataset=FASHION, r=4)


# ---- the batch step, as a model calls it between blocks --------------------------------------

def test_merge_step_weighted_means_and_counts():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 40, 12)).astype(np.float32)
    counts = rng.integers(1, 4, (2, 40)).astype(np.float32)
    ent = rng.random((2, 40)).astype(np.float32)
    out = qmpp.merge_step(x, [10, 7], counts=counts, entropy=ent, keep_first=1, seed=3)
    assert out["merged"].shape == (2, 10, 12) and out["labels"].dtype == np.int32
    for b, k in enumerate((10, 7)):
        lab = out["labels"][b]
        assert lab[0] == 0 and set(lab) == set(range(k))  # the class row stays first
        w = out["mass"][b] * counts[b]
        for g in range(k):
            m = lab == g
            if g == 0:  # the kept-first row stays as it is
                assert m.sum() == 1 and m[0]
                want = x[b, 0]
            else:
                want = (w[m, None] * x[b, m]).sum(0) / w[m].sum()
            assert np.allclose(out["merged"][b, g], want, atol=1e-5)
            assert out["counts"][b, g] == counts[b, m].sum()
        assert not out["merged"][b, k:].any()
    tome = qmpp.merge_step(x, 30, counts=counts, method="tome")
    assert np.allclose(tome["counts"].sum(1), counts.sum(1))
    with pytest.raises(qmpp.UsageError, match="merge step: k has 3 entries for B = 2"):
        qmpp.merge_step(x, [4, 4, 4], entropy=ent)
    with pytest.raises(qmpp.UsageError, match="needs a saliency or the attention entropies"):
        qmpp.merge_step(x, 4)
    with pytest.raises(qmpp.UsageError, match=r"metric must be \[2, 40, M\]"):
        qmpp.merge_step(x, 4, metric=np.ones((2, 3, 5), np.float32))


# ---- pruning measured fairly: each dropped token as its nearest kept one ---------------------

@pytest.mark.parametrize("method", ["quickmerge", "tome", "topk", "random"])
def test_nearest_kept_reconstruction(method):
    x = np.load(TOKENS).astype(np.float64)
    r = qmpp.merge(np.load(TOKENS), k=40, method=method, backend="cpu", seed=2)
    m = r.metrics
    merged, labels = r.merged.astype(np.float64), r.labels.copy()
    dropped = labels < 0
    if method in ("topk", "random"):
        assert dropped.sum() == 532 - 40
        unit = merged / np.linalg.norm(merged, axis=1, keepdims=True)
        labels[dropped] = np.argmax(x[dropped] @ unit.T, axis=1)
    else:
        assert not dropped.any()
    u = merged[labels]
    err = np.linalg.norm(x - u) / np.linalg.norm(x)
    cos = np.mean((x * u).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(u, axis=1))
    assert m["reconstruction_error_nearest_kept"] == pytest.approx(err, rel=1e-6)
    assert m["mean_cosine_nearest_kept"] == pytest.approx(cos, rel=1e-6)
    if dropped.any():  # the zero-fill figure is the strawman: mean_cosine is exactly K/N there
        assert m["mean_cosine"] == pytest.approx(40 / 532, rel=1e-6)
        assert m["mean_cosine_nearest_kept"] > 0.5
    else:
        assert m["mean_cosine_nearest_kept"] == m["mean_cosine"]
        assert m["reconstruction_error_nearest_kept"] == m["reconstruction_error"]
