"""``python -m miar.bench``: the same as ``miar bench``."""

import sys

from miar.bench.cli import main

sys.exit(main())
