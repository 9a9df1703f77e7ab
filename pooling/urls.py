from django.urls import path

from pooling import api

urlpatterns = [
    path("session", api.SessionView.as_view(), name="api-session"),
    path("session/qr.png", api.QrPngView.as_view(), name="api-session-qr-png"),
    path("session/start", api.SessionStartView.as_view(), name="api-session-start"),
    path("session/stop", api.SessionStopView.as_view(), name="api-session-stop"),
    path("session/logout", api.SessionStopView.as_view(logout=True), name="api-session-logout"),
    path("usage", api.UsageView.as_view(), name="api-usage"),
    path("numbers", api.NumbersView.as_view(), name="api-numbers"),
    path("numbers/claim", api.NumberClaimView.as_view(), name="api-numbers-claim"),
    path("staff/slots", api.StaffSlotsView.as_view(), name="api-staff-slots"),
    path("staff/numbers", api.StaffNumbersView.as_view(), name="api-staff-numbers"),
    path("staff/numbers/<str:phone_number_id>", api.StaffNumberView.as_view(), name="api-staff-number"),
]
