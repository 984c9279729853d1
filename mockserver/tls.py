"""HTTPS on a second port, for clients that speak nothing else (fal-client).

:func:`test_ca` makes a throwaway certificate authority with ``trustme``, writes its
certificate (PEM) into a fresh temporary directory for ``SSL_CERT_FILE``, and returns a
server context whose certificate it signed for ``127.0.0.1``, ``::1`` and ``localhost``.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestCA", "fal_environment", "test_ca"]

CA_FILE = "nanobanana-mock-ca.pem"


@dataclass(frozen=True, slots=True)
class TestCA:
    """The CA file a client trusts and the server's context; :meth:`remove` deletes it."""

    ca_file: Path
    context: ssl.SSLContext

    def remove(self) -> None:
        shutil.rmtree(self.ca_file.parent, ignore_errors=True)


def test_ca() -> TestCA:
    import trustme  # imported here: only --tls-port needs it

    ca = trustme.CA(organization_name="nanobanana-mock test CA")
    leaf = ca.issue_cert("127.0.0.1", "::1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    directory = Path(tempfile.mkdtemp(prefix="nanobanana-mock-tls-"))
    ca_file = directory / CA_FILE
    ca.cert_pem.write_to_path(str(ca_file))
    return TestCA(ca_file, context)


def fal_environment(host: str, port: int, queue_path: str, run_path: str, ca_file: Path) -> str:
    """The variables that point fal-client at the mock: hosts with a path prefix, no
    scheme (it always speaks HTTPS), and the CA to trust."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (
        f"SSL_CERT_FILE={ca_file} FAL_QUEUE_RUN_HOST={authority}{queue_path} "
        f"FAL_RUN_HOST={authority}{run_path}"
    )
