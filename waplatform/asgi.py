import os
from http import HTTPStatus

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "waplatform.settings")
django_asgi_app = get_asgi_application()

# Imported after the apps are loaded: the consumers import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from messaging.routing import websocket_urlpatterns  # noqa: E402


def _cap_request_headers() -> None:
    """daphne runs on Twisted, whose HTTP channel drops a request whose headers
    pass this many bytes; pinned here so the limit is ours, not a default."""
    from django.conf import settings

    try:
        from twisted.web.http import HTTPChannel
    except ImportError:  # served by something other than daphne
        return
    HTTPChannel.totalHeadersSize = settings.MAX_REQUEST_HEADER_BYTES


def _complete_reason_phrases() -> None:
    """ASGI carries no reason phrase, and Twisted's table lacks the newer codes:
    daphne would send "429 Unknown Status". Fill the gaps from the standard library."""
    try:
        from twisted.web import http as twisted_http
    except ImportError:
        return
    for code in HTTPStatus:
        twisted_http.RESPONSES.setdefault(code.value, code.phrase.encode("ascii"))


def _leave_bodies_to_django() -> None:
    """Twisted parses every POST multipart body into `request.args` (which daphne never reads)
    and, when that parse fails, answers a bare 400 with no body before Django sees the request.
    Django parses the body itself, with its own limits, and answers in the API's error shape."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:
        return
    if getattr(WebRequest, "_bodies_left_to_django", False):
        return
    original_init = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__
    WebRequest._bodies_left_to_django = True


_cap_request_headers()
_complete_reason_phrases()
_leave_bodies_to_django()


from waplatform import draining  # noqa: E402
from waplatform.checks import refuse_to_serve_with_failed_checks  # noqa: E402
from waplatform.gc_freeze import freeze_startup_objects  # noqa: E402

# daphne runs no system checks; the ones that guard data across hosts run here.
refuse_to_serve_with_failed_checks()

draining.install_signal_handler()

application = ProtocolTypeRouter(
    {
        # Outermost on HTTP: while the process drains it answers without entering Django.
        "http": draining.DrainingMiddleware(django_asgi_app),
        # Browsers send the page's Origin on the handshake; a socket opened from another
        # site would otherwise ride the person's session cookie.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Last, once everything the process needs at start is loaded (waplatform/gc_freeze.py).
freeze_startup_objects()
