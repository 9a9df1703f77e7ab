from django.contrib import admin
from django.urls import path

from operations import views

staff = admin.site.admin_view

urlpatterns = [
    path("pools/", staff(views.pools_view), name="operations-pools"),
    path("pools/slots/<int:slot_id>/<str:action>/", staff(views.slot_action), name="operations-slot-action"),
    path("costs/", staff(views.costs_view), name="operations-costs"),
    path("queues/", staff(views.queues_view), name="operations-queues"),
    path("health/", staff(views.health_view), name="operations-health"),
]
