"""Streaming from disk: the column store (data/columns.py), `e2e data prepare`, and training
from a prepared corpus -- the same weights as from memory, exact resume, flat memory."""

import dataclasses
import io
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import BlobsTask, blobs_config, run_cli

from e2e.data.columns import ColumnSpec, CorpusWriter, PreparedSplit
from e2e.engine import fit
from e2e.engine.checkpoint import load_checkpoint
from e2e.errors import E2EError

COLUMNS = {"x": ColumnSpec("uint8", (2, 3)), "audio": ColumnSpec("float32", (), True),
           "text": ColumnSpec("uint8", (), True), "y": ColumnSpec("int64")}


def examples(n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.integers(0, 256, (2, 3)), "y": i, "text": f"ejemplo número {i}",
             "audio": rng.standard_normal(int(rng.integers(1, 40))).astype(np.float32)}
            for i in range(n)]


def test_columns_round_trip_and_plain_npy(tmp_path):
    rows = examples(300)
    w = CorpusWriter(tmp_path / "c", "demo", COLUMNS, meta={"k": 1}, checkpoint_every=64)
    assert w.write_split("train", rows) == 300
    w.finish()
    s = PreparedSplit(tmp_path / "c", "train")
    assert len(s) == 300
    for i in (0, 63, 64, 299):
        assert np.array_equal(s["x"][i], rows[i]["x"])
        assert np.array_equal(s["audio"][i], rows[i]["audio"])
        assert s["text"].text(i) == rows[i]["text"]
        assert int(s["y"][i][()]) == i
    assert list(s["audio"].lengths()) == [len(r["audio"]) for r in rows]
    # every file is a plain .npy that numpy opens
    assert np.load(tmp_path / "c/train/x.npy").shape == (300, 2, 3)
    offsets = np.load(tmp_path / "c/train/text.offsets.npy")
    flat = np.load(tmp_path / "c/train/text.npy")
    assert flat[offsets[5]:offsets[6]].tobytes().decode() == rows[5]["text"]


def test_interrupted_write_resumes_to_the_same_files(tmp_path):
    rows = examples(250)
    straight = CorpusWriter(tmp_path / "a", "demo", COLUMNS, checkpoint_every=100)
    straight.write_split("train", rows)
    straight.finish()

    class Killed(Exception):
        pass

    def dies_at_170():
        for i, r in enumerate(rows):
            if i == 170:
                raise Killed
            yield r
    w = CorpusWriter(tmp_path / "b", "demo", COLUMNS, checkpoint_every=100)
    with pytest.raises(Killed):
        w.write_split("train", dies_at_170())
    assert not (tmp_path / "b/columns.json").exists()
    with pytest.raises(E2EError, match="not finished"):
        PreparedSplit(tmp_path / "b", "train")
    w = CorpusWriter(tmp_path / "b", "demo", COLUMNS, checkpoint_every=100)
    assert w.done("train") == 100  # the last record; the 70 rows after it are rewritten
    w.write_split("train", rows[100:])
    w.finish()
    for f in sorted((tmp_path / "a/train").iterdir()):
        assert f.read_bytes() == (tmp_path / "b/train" / f.name).read_bytes(), f.name


@pytest.mark.parametrize("bad, message", [
    ({"x": np.zeros((3, 2))}, r"example 0, column 'x': shape \(3, 2\)"),
    ({"y": 2.5}, r"column 'y': a value of dtype float64"),
    ({"x": np.full((2, 3), 300)}, r"values 300..300 do not fit the column's uint8"),
])
def test_bad_values_are_named(tmp_path, bad, message):
    row = {**examples(1)[0], **bad}
    w = CorpusWriter(tmp_path / "c", "demo", COLUMNS)
    with pytest.raises(E2EError, match=message):
        w.write_split("train", [row])


def test_missing_column_and_occupied_folder(tmp_path):
    w = CorpusWriter(tmp_path / "c", "demo", COLUMNS)
    with pytest.raises(E2EError, match="train example 0: no value for column 'audio'"):
        w.write_split("train", [{"x": np.zeros((2, 3)), "y": 0, "text": "a"}])
    (tmp_path / "d").mkdir()
    (tmp_path / "d/notes.txt").write_text("mine")
    with pytest.raises(E2EError, match="is not empty"):
        CorpusWriter(tmp_path / "d", "demo", COLUMNS)
    assert (tmp_path / "d/notes.txt").read_text() == "mine"  # nothing of the user's touched


def test_reads_are_not_memory_mapped(tmp_path):
    """The corpus goes through the page cache, not this process's mappings (flat RSS)."""
    w = CorpusWriter(tmp_path / "c", "demo", COLUMNS)
    w.write_split("train", examples(100))
    w.finish()
    s = PreparedSplit(tmp_path / "c", "train")
    total = sum(float(s["audio"][i].sum()) + int(s["x"][i].sum()) for i in range(len(s)))
    assert np.isfinite(total)
    maps = open("/proc/self/maps").read()
    assert str(tmp_path / "c") not in maps


# ---- vision: prepare, then train from disk ----

SMALL = ["--quiet", "--set", "model.widths=[8,16,16]", "train.batch_size=32",
         "train.log_every=1", "train.eval_every=20", "train.ema=0", "train.precision=fp32"]


@pytest.fixture(scope="module")
def digits_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "digits"
    run_cli("data", "prepare", "vision", "--set", "data.source=digits", "--out", str(out))
    return out


def final_weights(run):
    return load_checkpoint(run / "checkpoints/last.pt")["model"]


def test_prepared_digits_train_to_the_same_weights_as_in_memory(tmp_path, digits_corpus):
    manifest = json.loads((digits_corpus / "columns.json").read_text())
    assert manifest["splits"] == {"train": 1294, "val": 144, "test": 359}
    args = ["--set", "train.epochs=2", *SMALL]
    run_cli("train", "vision", "--out", str(tmp_path / "mem"), "--data", "digits", *args)
    run_cli("train", "vision", "--out", str(tmp_path / "disk"), "--data", str(digits_corpus),
            *args)
    run_cli("train", "vision", "--out", str(tmp_path / "workers"), "--data",
            str(digits_corpus), *args, "--set", "train.num_workers=2")
    mem = final_weights(tmp_path / "mem")
    for other in ("disk", "workers"):
        weights = final_weights(tmp_path / other)
        assert all(torch.equal(mem[k], weights[k]) for k in mem), other
    a = json.loads((tmp_path / "mem/results.json").read_text())
    b = json.loads((tmp_path / "disk/results.json").read_text())
    assert a["test/accuracy"] == b["test/accuracy"]


def test_streamed_run_killed_and_resumed_is_bit_identical(tmp_path, digits_corpus):
    args = ["--data", str(digits_corpus), "--set", "train.epochs=4", "train.checkpoint_every=7",
            *SMALL]
    run_cli("train", "vision", "--out", str(tmp_path / "straight"), *args)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "e2e", "train", "vision", "--out",
                             str(killed), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        ckpt = killed / "checkpoints/last.pt"
        if ckpt.exists() and load_checkpoint(ckpt)["state"]["step"] >= 60:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"
    run_cli("train", "--resume", str(killed), "--quiet")
    a, b = final_weights(tmp_path / "straight"), final_weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_user_parquet_corpus_with_class_names(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from PIL import Image

    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(60):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(buffer, "PNG")
        images.append({"bytes": buffer.getvalue(), "path": None})  # Hugging Face's Image
        labels.append(["cat", "dog", "ant"][i % 3])
    pq.write_table(pa.table({"img": images, "animal": labels}), tmp_path / "pets.parquet")
    out = tmp_path / "pets"
    run_cli("data", "prepare", "vision", "--from", str(tmp_path / "pets.parquet"), "--out",
            str(out), "--column", "image=img", "--column", "label=animal",
            "--set", "data.image_size=16", "data.channels=1")
    manifest = json.loads((out / "columns.json").read_text())
    assert manifest["meta"]["classes"] == ["ant", "cat", "dog"]
    assert manifest["columns"]["x"]["shape"] == [1, 16, 16]
    assert sum(manifest["splits"].values()) == 60
    s = PreparedSplit(out, "train")
    assert s["x"][0].shape == (1, 16, 16)
    assert set(int(s["y"][i][()]) for i in range(len(s))) == {0, 1, 2}


def test_user_corpus_errors_name_the_record(tmp_path):
    def prepare(name, *extra):
        return run_cli("data", "prepare", "vision", "--from", str(tmp_path / name), "--out",
                       str(tmp_path / f"out-{name}"), "--val-fraction", "0",
                       "--test-fraction", "0", *extra, check=False)
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "missing.jsonl").write_text('{"image": "a.png", "label": 1}\n{"label": 2}\n')
    r = prepare("missing.jsonl")
    assert r.returncode != 0
    assert "missing.jsonl, record 1: no field 'image'" in r.stderr
    assert "--column image=FIELD" in r.stderr
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png", "label": 1}\n')
    r = prepare("bad.jsonl")
    assert "bad.jsonl, train record 0: cannot read image" in r.stderr and "--skip-bad" in r.stderr
    r = prepare("bad.jsonl", "--column", "picture=img")
    assert "has no column 'picture'" in r.stderr
    (tmp_path / "list.jsonl").write_text('{"image": "a.png", "label": 1}\n[1]\n')
    r = prepare("list.jsonl")
    assert "list.jsonl, line 2: a list, not a JSON object" in r.stderr


# ---- the engine on a streamed split: the plain-loop equivalence holds ----

class StreamedBlobs(BlobsTask):
    """The blobs task with its training split written to a column store and read back."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def build_data(self, cfg, info=None):
        splits = super().build_data(cfg, info)
        if not (self.folder / "columns.json").exists():
            x, y = splits.train.tensors["x"], splits.train.tensors["y"]
            w = CorpusWriter(self.folder, "blobs", {"x": ColumnSpec("float32", (2,)),
                                                    "y": ColumnSpec("int64")})
            w.write_split("train", ({"x": x[i].numpy(), "y": int(y[i])} for i in range(len(y))))
            w.finish()
        return dataclasses.replace(splits, train=ColumnRows(self.folder))


class ColumnRows(torch.utils.data.Dataset):
    def __init__(self, folder):
        self.store = PreparedSplit(folder, "train")

    def __len__(self):
        return len(self.store)

    def __getitem__(self, i):
        return {"x": torch.from_numpy(self.store["x"][i].copy()),
                "y": torch.tensor(int(self.store["y"][i][()]))}


@pytest.mark.parametrize("workers", [0, 2])
def test_fit_on_a_streamed_split_equals_fit_in_memory(blobs, tmp_path, workers):
    """fit in memory equals the plain PyTorch loop (test_contract); streamed, it equals fit in
    memory bit for bit, with DataLoader workers too."""
    cfg = blobs_config(max_steps=23, batch_size=32, eval_every=10, num_workers=workers)
    fit(blobs, cfg, tmp_path / "memory", quiet=True)
    fit(StreamedBlobs(tmp_path / "corpus"), cfg, tmp_path / "disk", quiet=True)
    a, b = final_weights(tmp_path / "memory"), final_weights(tmp_path / "disk")
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- speech: the application's own clips, and a Common Voice folder ----

SPEECH_TINY = ["data.n=24", "data.n_val=6", "data.n_test=6", "data.kinds=digits",
               "data.asterisk=false", "data.real=", "data.flite=0", "data.augment.enabled=false",
               "model.subsample=2", "model.dim=32", "model.layers=1", "model.filters=24",
               "train.batch_size=6", "train.log_every=1", "train.eval_every=1000",
               "train.precision=fp32"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_speech_prepared_and_common_voice(tmp_path):
    from e2e.data.audio import read_manifest

    synth = tmp_path / "synth"
    own = tmp_path / "own"
    run_cli("data", "prepare", "speech", "--out", str(own), "--set", f"data.corpus={synth}",
            *SPEECH_TINY)
    manifest = json.loads((own / "columns.json").read_text())
    assert manifest["splits"] == {"train": 24, "val": 6, "test": 6}
    assert manifest["meta"]["test_sets"] == ["synth_digits"]
    a = run_cli("train", "speech", "--out", str(tmp_path / "a"), "--quiet", "--set",
                f"data.source={own}", *SPEECH_TINY, "train.max_steps=4", "train.num_workers=2")
    results = json.loads((tmp_path / "a/results.json").read_text())
    assert "test/synth_digits_cer" in results, a.stdout

    # a Common Voice folder: clips/ + train.tsv, dev.tsv, test.tsv (path, sentence, client_id)
    cv = tmp_path / "cv"
    (cv / "clips").mkdir(parents=True)
    items = read_manifest(synth / "train.tsv")
    for name, part in (("train", items[:14]), ("dev", items[14:18]), ("test", items[18:22])):
        lines = ["client_id\tpath\tsentence"]
        for k, u in enumerate(part):
            (cv / "clips" / u.path.name).write_bytes(u.path.read_bytes())
            lines.append(f"speaker{k % 3}\t{u.path.name}\t{u.text.upper()}!")
        (cv / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    run_cli("data", "prepare", "speech", "--from", str(cv), "--out", str(tmp_path / "cvp"))
    s = PreparedSplit(tmp_path / "cvp", "train")
    assert len(s) == 14 and s["text"].text(0) == items[0].text  # normalized: lower, no "!"
    assert s["group"].text(1) == "speaker1"
    assert PreparedSplit(tmp_path / "cvp", "test")["group"].text(0) == "test"
    run_cli("train", "speech", "--out", str(tmp_path / "b"), "--quiet", "--set",
            f"data.source={tmp_path / 'cvp'}", *SPEECH_TINY, "train.max_steps=3")
    assert "test/test_cer" in json.loads((tmp_path / "b/results.json").read_text())


# ---- text: the application's own pairs (a mix of corpora), and a TSV of pairs ----

TEXT_TINY = ["model.d_model=32", "model.heads=2", "model.encoder_layers=1",
             "model.decoder_layers=1", "model.ff=64", "data.vocab_size=300", "data.val_decode=4",
             "data.test_limit=5", "model.beam=1", "train.batch_size=16", "train.log_every=1",
             "train.eval_every=1000", "train.precision=fp32"]


def test_text_prepared_mix_and_user_tsv(tmp_path):
    own = tmp_path / "own"
    run_cli("data", "prepare", "text", "--out", str(own), "--set", "data.limit=300")
    manifest = json.loads((own / "columns.json").read_text())
    assert manifest["splits"]["train"] == 300
    parts = manifest["meta"]["parts"]
    assert set(parts) == {"bible-en-es", "messages-en-es"}  # the default: two corpora
    run_cli("train", "text", "--out", str(tmp_path / "a"), "--quiet", "--set",
            f"data.source={own}", *TEXT_TINY, "train.max_steps=3", "train.num_workers=2")
    results = json.loads((tmp_path / "a/results.json").read_text())
    assert {"test/bleu:bible-en-es", "test/bleu:messages-en-es"} <= set(results)

    pairs = [(f"The file {i} could not be opened.", f"No se pudo abrir el archivo {i}.")
             for i in range(80)]
    (tmp_path / "train.tsv").write_text("en\tes\n" + "".join(f"{a}\t{b}\n" for a, b in pairs))
    r = run_cli("data", "prepare", "text", "--from", str(tmp_path / "train.tsv"), "--out",
                str(tmp_path / "tsv"), check=False)
    assert "no field 'source'" in r.stderr and "--column source=FIELD" in r.stderr
    run_cli("data", "prepare", "text", "--from", str(tmp_path / "train.tsv"), "--out",
            str(tmp_path / "tsv"), "--column", "source=en", "--column", "target=es")
    sizes = json.loads((tmp_path / "tsv/columns.json").read_text())["splits"]
    assert sizes == {"train": 72, "val": 4, "test": 4}
    s = PreparedSplit(tmp_path / "tsv", "train")
    assert (s["source"].text(0), s["target"].text(0)) in pairs
    run_cli("train", "text", "--out", str(tmp_path / "b"), "--quiet", "--set",
            f"data.source={tmp_path / 'tsv'}", *TEXT_TINY, "train.max_steps=3")
    assert "test/bleu" in json.loads((tmp_path / "b/results.json").read_text())


def _shard(path, samples):
    """A WebDataset shard: each sample's files side by side, named KEY.EXTENSION."""
    import tarfile

    with tarfile.open(path, "w") as tar:
        for key, files in samples:
            for extension, data in files.items():
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_user_webdataset_shards_split_by_name(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    shards = tmp_path / "shards"
    shards.mkdir()
    for split, n in (("train", 24), ("val", 6), ("test", 6)):
        samples = []
        for i in range(n):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(buffer, "PNG")
            samples.append((f"{split}/{i:04d}", {"png": buffer.getvalue(),
                                                 "cls": str(i % 3).encode()}))
        _shard(shards / f"{split}-000000.tar", samples)
    out = tmp_path / "prepared"
    run_cli("data", "prepare", "vision", "--from", str(shards), "--out", str(out),
            "--column", "image=png", "--column", "label=cls", "--set", "data.image_size=16",
            "data.channels=1")
    manifest = json.loads((out / "columns.json").read_text())
    assert manifest["splits"] == {"train": 24, "val": 6, "test": 6}
    assert manifest["meta"]["classes"] == ["0", "1", "2"]
    s = PreparedSplit(out, "train")
    assert [int(s["y"][i][()]) for i in range(4)] == [0, 1, 2, 0]  # in the shard's order
    # one shard, no split names: held out at random; a field that is not there is named
    r = run_cli("data", "prepare", "vision", "--from", str(shards / "train-000000.tar"),
                "--out", str(tmp_path / "bad"), "--column", "image=png", "--column",
                "label=label", check=False)
    assert r.returncode != 0 and "record 0: no field 'label'" in r.stderr, r.stderr
