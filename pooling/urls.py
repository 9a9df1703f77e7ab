from django.urls import path

from pooling import api

urlpatterns = [
    path("session", api.SessionView.as_view(), name="api-session"),
    path("session/qr.png", api.QrPngView.as_view(), name="api-session-qr-png"),
    path("session/start", api.SessionStartView.as_view(), name="api-session-start"),
    path("session/stop", api.SessionStopView.as_view(), name="api-session-stop"),
    path("session/logout", api.SessionStopView.as_view(logout=True), name="api-session-logout"),
    path("usage", api.UsageView.as_view(), name="api-usage"),
    path("staff/slots", api.StaffSlotsView.as_view(), name="api-staff-slots"),
]
