"""One module per provider, holding only what differs between them."""

from .base import Provider
from .pixazo import Pixazo
from .queue import QueueProvider
from .seaart import SeaArt
from .segmind import Segmind

__all__ = ["PROVIDER_CLASSES", "Pixazo", "Provider", "QueueProvider", "SeaArt", "Segmind"]

PROVIDER_CLASSES: tuple[type[Provider], ...] = (Segmind, SeaArt, Pixazo)
