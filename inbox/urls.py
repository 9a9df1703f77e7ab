from django.urls import path

from inbox import api, views
from tenants.auth_failures import throttled_sign_in

urlpatterns = [
    path("", views.inbox_page, name="inbox"),
    path("login/", throttled_sign_in(views.InboxLoginView.as_view()), name="inbox-login"),
    path("logout/", views.InboxLogoutView.as_view(), name="inbox-logout"),
    path("api/agent-states", api.AgentStatesView.as_view(), name="inbox-agent-states"),
    path("api/conversations/<int:pk>/read", api.MarkReadView.as_view(), name="inbox-mark-read"),
]
