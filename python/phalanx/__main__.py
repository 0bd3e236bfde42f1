"""`python -m phalanx launch ...`: the `phalanx` command without the console script."""

import sys

from .cli import main

sys.exit(main())
