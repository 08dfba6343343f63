"""The HTTP side of the daemon: status page, /metrics, /healthz, /readyz.

``create_app(source)`` builds the ASGI app over what the daemon exposes
(``Source``); ``HttpListener`` serves it on the daemon's event loop.
"""

from newswatch.web.app import CSP, Source, create_app
from newswatch.web.pages import Runtime
from newswatch.web.server import HttpListener

__all__ = ["CSP", "HttpListener", "Runtime", "Source", "create_app"]
