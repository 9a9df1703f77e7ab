from django.urls import path

from messaging import hooks

urlpatterns = [
    path("waha/<int:slot_id>/", hooks.waha_hook, name="hook-waha"),
    path("cloud/", hooks.cloud_hook, name="hook-cloud"),
]
