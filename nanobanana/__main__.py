"""``python -m nanobanana_mock.client``: the ``nanobanana`` command line."""

import sys

from .cli import main

sys.exit(main())
