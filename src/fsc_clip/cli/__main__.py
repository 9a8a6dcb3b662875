"""Allow ``python -m fsc_clip.cli ...`` (e.g. under ``torchrun``)."""

import sys

from fsc_clip.cli.main import main

sys.exit(main())
