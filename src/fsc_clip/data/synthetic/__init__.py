"""The embedded synthetic compositional world: scenes, captions, negatives, and writers in real formats.

Quick use::

    from fsc_clip.data.synthetic import WorldConfig, generate_world
    manifest = generate_world(WorldConfig(seed=0, n_train=2000), "world/")

The folder then holds a training TSV (``train/train_neg_clip.tsv``: filepath, title, neg_caption)
and SugarCrepe / Winoground / ARO / zero-shot / Karpathy-retrieval test sets in their native layouts
(see :data:`LAYOUT`).
"""

from fsc_clip.data.synthetic.render import render_scene
from fsc_clip.data.synthetic.scene import (
    NEGATIVE_KINDS,
    Mention,
    Scene,
    SceneObject,
    Statement,
    caption,
    describe,
    holds,
    negative,
    sample_scene,
)
from fsc_clip.data.synthetic.vocab import Vocab, load_vocab
from fsc_clip.data.synthetic.world import (
    LAYOUT,
    ZEROSHOT_TASKS,
    WorldConfig,
    generate_world,
    read_manifest,
    zeroshot_classes,
    zeroshot_templates,
)

__all__ = [
    "LAYOUT",
    "NEGATIVE_KINDS",
    "ZEROSHOT_TASKS",
    "Mention",
    "Scene",
    "SceneObject",
    "Statement",
    "Vocab",
    "WorldConfig",
    "caption",
    "describe",
    "generate_world",
    "holds",
    "load_vocab",
    "negative",
    "read_manifest",
    "render_scene",
    "sample_scene",
    "zeroshot_classes",
    "zeroshot_templates",
]
