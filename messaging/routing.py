"""WebSocket routes, mounted by waplatform.asgi under the session auth middleware."""

from django.urls import path

from messaging.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi(), name="ws-inbox"),
]
