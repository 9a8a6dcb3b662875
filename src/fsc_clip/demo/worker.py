"""Entry point of the demo's fine-tuning worker processes: ``python -m fsc_clip.demo.worker STOP_FILE JOB_FILE...``.

A module of its own, which the package never imports: ``fsc_clip.demo`` imports :mod:`fsc_clip.demo.parallel`, and
``python -m`` on a module that its package has already imported runs it a second time as ``__main__`` (Python warns
about it in every worker: "found in sys.modules after import of package ... may result in unpredictable
behaviour"). The work is :func:`fsc_clip.demo.parallel.worker_main`.
"""

from __future__ import annotations

import sys

from fsc_clip.demo.parallel import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1], sys.argv[2:]))
