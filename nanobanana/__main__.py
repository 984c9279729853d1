"""``python -m nanobanana_mock.client``: the command line (see :mod:`nanobanana.cli`)."""

import sys

from .cli import main

sys.exit(main())
