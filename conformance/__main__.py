"""``python -m nanobanana_mock.conformance``: the same as ``nanobanana-conformance``."""

import sys

from .cli import main

sys.exit(main())
