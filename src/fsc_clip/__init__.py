"""fsc-clip: fine-tune and evaluate CLIP models for compositional understanding (FSC-CLIP, EMNLP 2024).

Importing the package is cheap: torch, open_clip, spaCy and friends are imported only by the
submodules that need them.
"""

__version__ = "0.1.0"
