"""What the training loader tells the user: skipped samples by name, scarce or invisible hard negatives.

Also the negatives it lets through: never one identical to its caption, whatever the source. The COCO
``train_neg_clip.tsv`` quirk is reproduced by a table written here: NegCLIP's ``neg_caption`` lists hold a few
"negatives" that only re-space or re-case the caption (e.g. "semi-trucks in" -> "semi trucks - in"; 11 of the
4,839 rows of the released ``valid_neg_clip.tsv``, mertyg/vision-language-models-are-bows@81fdd20).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import torch

from fsc_clip.data import DataConfig, build_train_loader
from fsc_clip.data.collate import BatchBuilder, Sample
from fsc_clip.data.hard_negatives import PRECOMPUTED, NegativeSampler
from fsc_clip.data.loader import NAMED_SKIPS


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _run_epoch(loader, epoch: int = 0) -> list:
    loader.set_epoch(epoch)
    return list(loader)


def _write_tsv(path: Path, rows: list[tuple[str, str, list[str]]]) -> Path:
    """COCO ``train_neg_clip.tsv`` layout: index column, title, filepath, neg_caption (a Python list literal)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["", "title", "filepath", "neg_caption"])
        for i, (image, caption, negs) in enumerate(rows):
            writer.writerow([i, caption, image, repr(negs)])
    return path


@pytest.mark.parametrize("workers", [0, 2])
def test_skipped_samples_are_named_with_file_row_and_how_to_make_them_fatal(
    tmp_path, image_rows, tok_pre, dh, caplog, workers
):
    for i in (3, 5):
        (tmp_path / image_rows[i]["filepath"]).unlink()
    table = dh.write_coco_neg_tsv(tmp_path / "train.tsv", image_rows)
    loader = build_train_loader(DataConfig(train_data=str(table), workers=workers), *tok_pre, batch_size=8)
    with caplog.at_level(logging.WARNING, logger="fsc_clip"):
        _run_epoch(loader)
    named = [m for m in _messages(caplog) if "skipped bad training sample" in m]
    assert loader.total_skipped == 2 and len(named) == 2
    for i in (3, 5):
        path = tmp_path / image_rows[i]["filepath"]
        assert any(str(path) in m and f"(row {i} of {table})" in m for m in named), named
    assert "data.on_bad_sample=raise" in named[0]


def test_only_the_first_few_skipped_samples_are_named(tmp_path, image_rows, tok_pre, dh, caplog):
    for row in image_rows[: NAMED_SKIPS + 3]:
        (tmp_path / row["filepath"]).unlink()
    table = dh.write_coco_neg_tsv(tmp_path / "train.tsv", image_rows)
    loader = build_train_loader(DataConfig(train_data=str(table)), *tok_pre, batch_size=8)
    with caplog.at_level(logging.WARNING, logger="fsc_clip"):
        _run_epoch(loader)
    named = [m for m in _messages(caplog) if "skipped bad training sample" in m]
    assert loader.total_skipped >= NAMED_SKIPS + 3 and len(named) == NAMED_SKIPS
    assert "not named" in named[-1]


def test_negclip_tsv_candidates_identical_to_the_caption_are_never_used(tmp_path, tok_pre, dh):
    caption = "A red truck parked in a hangar."
    genuine = "A red hangar parked in a truck."
    identical = [
        "a red truck parked in a hangar",
        "A red truck - parked in a hangar .",
        "A RED TRUCK PARKED IN A HANGAR.",
    ]
    rows = []
    for i in range(8):
        dh.write_png(tmp_path / f"img/{i}.png", seed=i)
        rows.append((f"img/{i}.png", caption, [*identical, genuine] if i < 4 else identical))
    table = _write_tsv(tmp_path / "train_neg_clip.tsv", rows)
    tok, pre = tok_pre
    [batch] = _run_epoch(build_train_loader(DataConfig(train_data=str(table), negatives="precomputed"), tok, pre, 8))
    for b, idx in enumerate(batch.indices.tolist()):
        if idx < 4:  # the one real negative is always the one chosen, whatever the seed mixes
            assert batch.neg_mask[b, 0] and torch.equal(
                batch.neg_texts[b, 0], tok([genuine])[0, : batch.texts.shape[1]]
            )
        else:  # only copies of the caption: no negative at all
            assert not batch.neg_mask[b, 0] and not batch.neg_texts[b, 0].any()
    # a generator style falls back to online generation for the rows whose candidates were all copies
    cfg = DataConfig(train_data=str(table), negatives="negclip")
    [batch] = _run_epoch(build_train_loader(cfg, tok, pre, 8))
    assert batch.neg_mask.all()
    for b in range(len(batch)):
        assert not torch.equal(batch.neg_texts[b, 0], batch.texts[b])


LONG = "a dog sitting on a bench in a park with tall trees and a blue lake and high mountains far behind it"


def test_candidates_differing_only_beyond_the_context_are_dropped_and_reported(tmp_path, tok_pre, dh, caplog):
    tok, pre = tok_pre
    assert tok.context_length == 16 and len(tok.encode(LONG)) > 14  # the tiny model reads 14 caption tokens
    beyond = LONG.replace("behind it", "behind them")
    within = LONG.replace("dog", "cat")
    rows = []
    for i in range(4):
        dh.write_png(tmp_path / f"img/{i}.png", seed=i)
        rows.append((f"img/{i}.png", LONG, [beyond, within] if i % 2 else [beyond]))
    table = _write_tsv(tmp_path / "t.tsv", rows)
    loader = build_train_loader(DataConfig(train_data=str(table), negatives="precomputed"), tok, pre, 4)
    with caplog.at_level(logging.WARNING, logger="fsc_clip"):
        [batch] = _run_epoch(loader)
    for b, idx in enumerate(batch.indices.tolist()):
        assert bool(batch.neg_mask[b, 0]) == bool(idx % 2)
        if idx % 2:
            assert torch.equal(batch.neg_texts[b, 0], tok([within])[0, : batch.texts.shape[1]])
    hidden = [m for m in _messages(caplog) if "only beyond the first 16 tokens" in m]
    assert len(hidden) == 1 and "4 of 4 captions" in hidden[0] and "'negclip'" in hidden[0]
    missing = [m for m in _messages(caplog) if "no 'negclip' negative for 2 of 4 captions (50.0 %)" in m]
    assert len(missing) == 1


def test_collate_drops_negatives_the_models_tokenizer_cannot_tell_apart(tok_pre):
    """Last line of defence, with the model's own tokenizer: the sampler here does not know the context length."""
    tok, _ = tok_pre
    beyond = LONG.replace("behind it", "behind them")
    sampler = NegativeSampler(PRECOMPUTED, {LONG: {"negclip": [beyond]}}, context_length=None)
    builder = BatchBuilder(tok, lambda image: image, sampler, seed=0)
    batch = builder.collate([Sample(index=0, image=torch.zeros(3, 4, 4), caption=LONG)], epoch=0)
    assert torch.equal(tok([beyond]), tok([LONG]))  # identical to the model ...
    assert not batch.neg_mask.any() and not batch.neg_texts.any()  # ... so no negative
    assert batch.neg_stats.hidden == {"negclip": 1} and batch.neg_stats.missing == {"negclip": 1}


def test_scarce_negative_types_are_reported_with_counts(tmp_path, tok_pre, dh, caplog):
    pytest.importorskip("spacy")
    rows = []
    for i in range(8):
        dh.write_png(tmp_path / f"img/{i}.png", seed=i)
        # one-word captions: no swap, no replace, no shuffle can apply
        rows.append((f"img/{i}.png", f"Dogs{'!' * i}" if i < 6 else "A man riding a brown horse on the beach.", []))
    table = _write_tsv(tmp_path / "t.tsv", rows)
    loader = build_train_loader(DataConfig(train_data=str(table), negatives="fsc-clip"), *tok_pre, batch_size=8)
    with caplog.at_level(logging.WARNING, logger="fsc_clip"):
        _run_epoch(loader, 0)
        _run_epoch(loader, 1)  # reported once per loader, not every epoch
    for neg_type in ("negclip", "replace", "ngram_shuffle_2"):
        found = [m for m in _messages(caplog) if f"no {neg_type!r} negative for 6 of 8 captions (75.0 %)" in m]
        assert len(found) == 1, _messages(caplog)
