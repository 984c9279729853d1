"""nanobanana-mock: a contract-testing mock of the Nano Banana APIs of Segmind, SeaArt and Pixazo.

Build a server with :func:`create_app`; every setting lives in :class:`MockConfig`.
"""

from .app import create_app
from .clock import VirtualClock
from .config import MockConfig
from .jobs import Failure, State, Surface
from .state import STATE, MockState

__all__ = [
    "STATE",
    "Failure",
    "MockConfig",
    "MockState",
    "State",
    "Surface",
    "VirtualClock",
    "create_app",
]
