"""Port 0 for the HTTP server: bind any free port, and let the configuration name it.

Choosing a free port, closing it and binding it later is a race: anything on the machine may
take the port meanwhile (an outgoing connection gets such ports too). Strom instead binds
port 0 itself and reads the port back. For OCPP that needs nothing more (the server reports
its port once listening). For HTTP the port is part of the public URL, which every link is
built from, so the socket is bound before the parts are built: :func:`claim_http_socket`.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

from strom.config import StromConfig
from strom_core.config import ServerConfig

__all__ = ["claim_http_socket"]


def claim_http_socket(config: StromConfig) -> tuple[StromConfig, socket.socket | None]:
    """With ``server.port = 0``, bind a listening socket on any free port now.

    Returns:
        The configuration with the bound port (and the public URL on that port when it
        named port 0, as the default public URL ``http://<host>:<port>`` then does), and
        the socket; or the configuration unchanged
        and None when a fixed port is configured (the HTTP server binds it when it starts).

    Raises:
        OSError: the host does not resolve or nothing can be bound on it.
    """
    server = config.server
    if server.port != 0:
        return config, None
    family, kind, proto, _, address = socket.getaddrinfo(
        server.host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    port = int(sock.getsockname()[1])
    update: dict[str, object] = {"port": port}
    url = urlsplit(server.public_url)
    if url.port == 0:
        update["public_url"] = urlunsplit(
            url._replace(netloc=f"{url.netloc.rpartition(':')[0]}:{port}")
        )
    bound: ServerConfig = server.model_copy(update=update)
    return config.model_copy(update={"server": bound}), sock
