"""FSC-CLIP losses: CLIP, NegCLIP, global and local hard-negative losses with SCR, and the sigmoid (SigLIP)
counterparts; distributed-exact.

```python
from fsc_clip.losses import FSCCLIPLoss, FSCSigLIPLoss, LossConfig, build_loss
```
"""

from fsc_clip.losses.config import HN_LOSS_NAMES, REFERENCE_CLI_DEFAULTS, LossConfig
from fsc_clip.losses.factory import LOSSES, build_loss
from fsc_clip.losses.fsc import FSCCLIPLoss
from fsc_clip.losses.scr import scr_loss, scr_targets
from fsc_clip.losses.sigmoid import FSCSigLIPLoss, sigmoid_loss

__all__ = [
    "HN_LOSS_NAMES",
    "LOSSES",
    "REFERENCE_CLI_DEFAULTS",
    "FSCCLIPLoss",
    "FSCSigLIPLoss",
    "LossConfig",
    "build_loss",
    "scr_loss",
    "scr_targets",
    "sigmoid_loss",
]
