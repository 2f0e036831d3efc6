"""``python -m gdbstub.cli``: the same as the ``chronicorn`` command."""

import sys

from . import main

sys.exit(main())
