"""Prometheus metrics that lower layers update themselves.

Most metrics are counted by operations from the event bus; a gauge of live
state owned by a lower app (the inbox sockets of messaging) is defined here so
that the app updates it without importing operations, and operations reads it.
"""

from prometheus_client import Gauge

WEBSOCKET_CONNECTIONS = Gauge(
    "wap_websocket_connections", "Open live-inbox WebSocket connections", multiprocess_mode="livesum"
)
