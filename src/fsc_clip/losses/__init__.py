"""FSC-CLIP losses: CLIP, NegCLIP, global and local hard-negative losses with SCR, distributed-exact.

```python
from fsc_clip.losses import FSCCLIPLoss, LossConfig, build_loss
```
"""

from fsc_clip.losses.config import REFERENCE_CLI_DEFAULTS, LossConfig
from fsc_clip.losses.factory import LOSSES, build_loss
from fsc_clip.losses.fsc import FSCCLIPLoss
from fsc_clip.losses.scr import scr_loss, scr_targets

__all__ = ["LOSSES", "REFERENCE_CLI_DEFAULTS", "FSCCLIPLoss", "LossConfig", "build_loss", "scr_loss", "scr_targets"]
