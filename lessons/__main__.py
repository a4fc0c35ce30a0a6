"""``python -m lessons`` is the ``wslab`` command."""

import sys

from lessons.cli import main

sys.exit(main())
