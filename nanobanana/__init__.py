"""nanobanana: one async client (and a thin sync facade) for the Nano Banana image APIs of
Segmind, SeaArt and Pixazo, live or against the nanobanana-mock.

    async with Client("segmind") as client:        # key from SEGMIND_API_KEY
        result = await client.generate("nano-banana-pro", prompt="A comic page")

Errors form one tree rooted at :class:`NanoBananaError` (see :mod:`nanobanana_mock.client.errors`).
"""

from .client import Client, Violation
from .errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ContractViolation,
    InsufficientCredits,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    JobPending,
    NanoBananaError,
    NotFound,
    NotSupported,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
)
from .models import Image, JobHandle, JobStatus, Metrics, Result, StatusReport
from .sync import SyncClient
from .transport import RetryNotice, RetryPolicy, Timer, WallTimer

__all__ = [
    "ApiError",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ContractViolation",
    "Image",
    "InsufficientCredits",
    "InvalidRequest",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobPending",
    "JobStatus",
    "Metrics",
    "NanoBananaError",
    "NotFound",
    "NotSupported",
    "RateLimited",
    "Result",
    "RetryNotice",
    "RetryPolicy",
    "ServerError",
    "StatusReport",
    "SyncClient",
    "Timeout",
    "Timer",
    "TransportError",
    "Violation",
    "WallTimer",
]
