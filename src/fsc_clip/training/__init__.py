"""Trainer: typed run config, the training step/loop, checkpoints/resume, DDP, logging.

```python
from fsc_clip.training import TrainConfig, train
run_dir = train(TrainConfig(...))   # or fsc-clip train --config configs/coco/fsc-clip.yaml
```
"""

from fsc_clip.training.config import (
    CheckpointConfig,
    EvalConfig,
    LoggingConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from fsc_clip.training.loop import train
from fsc_clip.training.step import NonFiniteLossError

__all__ = [
    "CheckpointConfig",
    "EvalConfig",
    "LoggingConfig",
    "ModelConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "TrainConfig",
    "train",
]
