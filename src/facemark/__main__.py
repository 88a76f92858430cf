"""``python -m facemark``: the same as the ``facemark`` command."""
import sys

from .cli import main

sys.exit(main())
