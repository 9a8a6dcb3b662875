"""Webdataset captions from a side folder (the FSC-CLIP authors' CC-3M recipe, ``--caption-key coca_captions``).

The shards are real tar files written here in the img2dataset layout (``<key>.jpg/.txt/.json``, the JSON holding
``"key"``), next to a ``coca_captions/`` folder of ``<key>.txt`` files, as the authors' ``train_subset_100K`` is laid
out (ytaek-oh/fsc-clip@604015db3f009a8f7485f1fb7e21d8343c67664a, README.md and src/training/data.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fsc_clip.config import ConfigError
from fsc_clip.data import BadSampleError, DataConfig, build_train_loader
from fsc_clip.errors import DataNotFoundError
from fsc_clip.training.config import load_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write_cc3m(folder: Path, dh, n_shards: int = 2, per_shard: int = 4, skip_caption: tuple[str, ...] = ()) -> dict:
    """Shards ``0000{s}.tar`` + ``coca_captions/<key>.txt``; returns key -> the CoCa caption expected."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "coca_captions").mkdir()
    expected = {}
    for s in range(n_shards):
        with wds.TarWriter(str(folder / f"{s:05d}.tar")) as sink:
            for j in range(per_shard):
                key = f"{s:05d}{j:04d}"
                meta = {"key": key, "caption": f"alt text {key}", "status": "success"}
                sink.write({"__key__": key, "png": dh.png_bytes(s * 10 + j), "txt": f"alt text {key}", "json": meta})
                if key in skip_caption:
                    continue
                coca = f"a coca caption of photo {key}"
                # CoCa files may carry more than one line; the authors read the first one (readline).
                (folder / "coca_captions" / f"{key}.txt").write_text(f"{coca}\nsecond line ignored\n")
                expected[key] = coca
    return expected


def _captions(loader) -> list[str]:
    loader.set_epoch(0)
    return [c for b in loader for c in b.captions]


def test_captions_come_from_the_side_folder_not_the_shards(tmp_path, tok_pre, dh):
    expected = write_cc3m(tmp_path / "train_subset_100K", dh)
    cfg = DataConfig(
        train_data=f"{tmp_path}/train_subset_100K/{{00000..00001}}.tar",
        train_num_samples=8,
        wds_caption_dir="coca_captions",
    )
    seen = _captions(build_train_loader(cfg, *tok_pre, batch_size=4))
    assert sorted(seen) == sorted(expected.values())  # first line only, alt text never used


def test_key_is_the_json_key_and_a_json_field_named_like_the_folder_wins(tmp_path, tok_pre, dh):
    import webdataset as wds

    folder = tmp_path / "shards"
    (folder / "coca_captions").mkdir(parents=True)
    with wds.TarWriter(str(folder / "00000.tar")) as sink:
        # tar key and JSON key differ: the authors build the path from the JSON's "key"
        sink.write({"__key__": "tarkey0", "png": dh.png_bytes(0), "txt": "alt", "json": {"key": "000123"}})
        # a JSON field named like the folder is taken as is (their `caption_col in item` branch)
        sink.write({"__key__": "tarkey1", "png": dh.png_bytes(1), "txt": "alt", "json": {"coca_captions": "inline"}})
        # no JSON member: we fall back to the tar key (theirs stops with a KeyError)
        sink.write({"__key__": "tarkey2", "png": dh.png_bytes(2), "txt": "alt"})
    (folder / "coca_captions" / "000123.txt").write_text("from the json key\n")
    (folder / "coca_captions" / "tarkey0.txt").write_text("wrong: the tar key\n")
    (folder / "coca_captions" / "tarkey2.txt").write_text("from the tar key\n")
    cfg = DataConfig(
        train_data=str(folder / "00000.tar"),
        train_num_samples=3,
        wds_caption_dir="coca_captions",
        wds_shuffle_buffer=0,
    )
    assert _captions(build_train_loader(cfg, *tok_pre, batch_size=3)) == [
        "from the json key",
        "inline",
        "from the tar key",
    ]


def test_absolute_caption_folder(tmp_path, tok_pre, dh):
    expected = write_cc3m(tmp_path / "shards", dh, n_shards=1)
    moved = tmp_path / "elsewhere" / "captions"
    moved.parent.mkdir()
    (tmp_path / "shards" / "coca_captions").rename(moved)
    cfg = DataConfig(train_data=str(tmp_path / "shards" / "00000.tar"), train_num_samples=4, wds_caption_dir=str(moved))
    assert sorted(_captions(build_train_loader(cfg, *tok_pre, batch_size=4))) == sorted(expected.values())


def test_missing_caption_file_is_a_named_bad_sample(tmp_path, tok_pre, dh, caplog):
    expected = write_cc3m(tmp_path / "s", dh, n_shards=1, per_shard=6, skip_caption=("000000002",))
    spec = str(tmp_path / "s" / "00000.tar")
    cfg = DataConfig(train_data=spec, train_num_samples=4, wds_caption_dir="coca_captions", wds_shuffle_buffer=0)
    loader = build_train_loader(cfg, *tok_pre, batch_size=4)
    with caplog.at_level(logging.WARNING, logger="fsc_clip"):
        seen = _captions(loader)
    assert loader.total_skipped == 1 and "a coca caption of photo 000000002" not in seen
    assert set(seen) <= set(expected.values()) and len(seen) == 4
    missing = tmp_path / "s" / "coca_captions" / "000000002.txt"
    assert any(str(missing) in r.getMessage() and "on_bad_sample=raise" in r.getMessage() for r in caplog.records)
    raising = DataConfig(**{**cfg.__dict__, "on_bad_sample": "raise"})  # the authors' behaviour: fatal
    with pytest.raises(BadSampleError, match=r"caption file not found: .*000000002\.txt"):
        _captions(build_train_loader(raising, *tok_pre, batch_size=4))


def test_missing_caption_folder_fails_before_training(tmp_path, tok_pre, dh):
    write_cc3m(tmp_path / "s", dh, n_shards=1)
    cfg = DataConfig(train_data=str(tmp_path / "s" / "00000.tar"), train_num_samples=4, wds_caption_dir="coca_capts")
    with pytest.raises(DataNotFoundError, match=r"caption folder .*coca_capts.*coca_captions.tar.gz"):
        build_train_loader(cfg, *tok_pre, batch_size=4)
    remote = DataConfig(train_data="https://example.org/{0..1}.tar", train_num_samples=4, wds_caption_dir="c")
    with pytest.raises(ConfigError, match="absolute"):
        build_train_loader(remote, *tok_pre, batch_size=2)


def test_missing_caption_member_names_the_members(tmp_path, tok_pre, dh):
    write_cc3m(tmp_path / "s", dh, n_shards=1)
    cfg = DataConfig(
        train_data=str(tmp_path / "s" / "00000.tar"), train_num_samples=4, wds_caption_key="coca", on_bad_sample="raise"
    )
    with pytest.raises(BadSampleError, match=r"no caption member 'coca' .*members: json, png, txt.*wds_caption_dir"):
        _captions(build_train_loader(cfg, *tok_pre, batch_size=4))


@pytest.mark.parametrize("method", ["clip", "negclip", "fsc-clip", "fsc-clip-lora"])
def test_cc3m_recipes_read_the_coca_captions(tmp_path, tok_pre, dh, method):
    """Every configs/cc3m recipe reads coca_captions/<key>.txt next to the shards, as the authors' CC-3M runs."""
    cfg = load_train_config(CONFIGS / "cc3m" / f"{method}.yaml").data
    assert cfg.wds_caption_dir == "coca_captions" and cfg.source == "webdataset"
    assert cfg.train_data.endswith("train_subset_100K/{00000..00014}.tar")
    if method != "clip":
        return
    expected = write_cc3m(tmp_path / "train_subset_100K", dh, n_shards=1)
    here = DataConfig(
        **{
            **cfg.__dict__,
            "train_data": f"{tmp_path}/train_subset_100K/00000.tar",
            "workers": 0,
            "train_num_samples": 4,
        }
    )
    assert sorted(_captions(build_train_loader(here, *tok_pre, batch_size=4))) == sorted(expected.values())
