from django.urls import path
from rest_framework.routers import SimpleRouter

from messaging import team_api
from messaging.api import ConversationViewSet, MessageViewSet, WebhookDeliveryViewSet, WebhookEndpointViewSet
from messaging.media_api import MediaViewSet

router = SimpleRouter(trailing_slash=False)
router.register("messages", MessageViewSet, basename="message")
router.register("media", MediaViewSet, basename="media")
router.register("conversations", ConversationViewSet, basename="conversation")
# Before "webhooks": its detail routes would otherwise read "deliveries" as an id.
router.register("webhooks/deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("contacts", team_api.ContactViewSet, basename="contact")
router.register("labels", team_api.LabelViewSet, basename="label")
router.register("canned-replies", team_api.CannedReplyViewSet, basename="canned-reply")
router.register("notes", team_api.NoteViewSet, basename="note")

urlpatterns = [
    path("members", team_api.MembersView.as_view(), name="members"),
    path("inbox/settings", team_api.InboxSettingsView.as_view(), name="inbox-settings"),
    *router.urls,
]
