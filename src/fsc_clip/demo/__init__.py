"""``fsc-clip demo``: pre-train a tiny CLIP on the synthetic world, fine-tune it with CLIP / NegCLIP / FSC-CLIP
(full and LoRA), or with the paper's eight loss-ablation configurations (``study="ablation"``), evaluate everything
with the real evaluators and write the holistic report.

```python
from fsc_clip.demo import demo_config, run_demo
result = run_demo(demo_config(quick=True, study="ablation"), "fsc-clip-demo")
print(result.report_files["html"])
```
"""

from fsc_clip.demo.config import STUDIES, DemoConfig, MethodConfig, StageConfig, StudyConfig, demo_config
from fsc_clip.demo.pipeline import DemoResult, format_table, run_demo

__all__ = [
    "STUDIES",
    "DemoConfig",
    "DemoResult",
    "MethodConfig",
    "StageConfig",
    "StudyConfig",
    "demo_config",
    "format_table",
    "run_demo",
]
