"""TLS for registry clients: the system CAs plus Docker's per-registry directory.

``/etc/docker/certs.d/<host[:port]>/`` (``$DOCKYARD_CERTS_DIR`` instead of
``/etc/docker/certs.d``, so tests and unprivileged users need not write /etc): every
``*.crt`` is a CA trusted for that registry besides the system ones, and each
``<name>.cert`` with its ``<name>.key`` is a client certificate presented to it, as
dockerd reads them. A registry reached without verification (loopback or insecure) still
presents its client certificate.
"""

from __future__ import annotations

import os
import ssl

from dockyard.errors import InvalidArgument

CERTS_DIR_ENV = "DOCKYARD_CERTS_DIR"
DEFAULT_CERTS_DIR = "/etc/docker/certs.d"

_contexts: dict[tuple[str, bool], ssl.SSLContext] = {}


def certs_dir(netloc: str) -> str:
    """The certs.d directory of registry ``netloc`` (``host[:port]``)."""
    base = os.environ.get(CERTS_DIR_ENV) or DEFAULT_CERTS_DIR
    return os.path.join(base, netloc.replace("/", "_"))


def _files(netloc: str) -> list[str]:
    try:
        return sorted(os.listdir(certs_dir(netloc)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise InvalidArgument(f"cannot read {certs_dir(netloc)}: {e.strerror or e}") from None


def has_ca(netloc: str) -> bool:
    """Whether certs.d holds a CA (``*.crt``) for ``netloc``."""
    return any(n.endswith(".crt") for n in _files(netloc))


def context(netloc: str, verify: bool) -> ssl.SSLContext:
    """The client context for ``netloc``: built once per process and registry."""
    ctx = _contexts.get((netloc, verify))
    if ctx is None:
        ctx = _contexts[(netloc, verify)] = _build(netloc, verify)
    return ctx


def _build(netloc: str, verify: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        ctx.load_default_certs()
    else:
        # Loading the system CAs costs milliseconds and verifies nothing here.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    d = certs_dir(netloc)
    names = _files(netloc)
    for n in names:
        path = os.path.join(d, n)
        if n.endswith(".key") and n[: -len(".key")] + ".cert" not in names:
            raise InvalidArgument(f"missing client certificate {n[:-4]}.cert for key {n}")
        if not (n.endswith(".crt") and verify) and not n.endswith(".cert"):
            continue
        key = n[: -len(".cert")] + ".key"
        if n.endswith(".cert") and key not in names:
            raise InvalidArgument(
                f"missing key {key} for client certificate {n}. CA certificates must use "
                "the extension .crt"
            )
        try:
            if n.endswith(".crt"):
                ctx.load_verify_locations(cafile=path)
            else:
                ctx.load_cert_chain(path, os.path.join(d, key))
        except (ssl.SSLError, OSError) as e:
            raise InvalidArgument(f"cannot load {path}: {_reason(e)}") from None
    return ctx


def x509_message(e: ssl.SSLCertVerificationError) -> str:
    """A verification failure in the words of Go's crypto/x509, which Docker users know."""
    code = getattr(e, "verify_code", 0)
    if code in (2, 18, 19, 20, 21):  # no issuer, self-signed (in chain), cannot verify leaf
        return "x509: certificate signed by unknown authority"
    if code == 10:
        return "x509: certificate has expired or is not yet valid"
    if code == 9:
        return "x509: certificate has expired or is not yet valid (not yet valid)"
    if code == 62:  # hostname mismatch
        return f"x509: certificate is not valid for this host ({_reason(e)})"
    return f"x509: {_reason(e)}"


def _reason(e: BaseException) -> str:
    return str(getattr(e, "verify_message", "") or getattr(e, "reason", "") or e)
