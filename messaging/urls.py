from rest_framework.routers import SimpleRouter

from messaging.api import ConversationViewSet, MessageViewSet, WebhookDeliveryViewSet, WebhookEndpointViewSet
from messaging.media_api import MediaViewSet

router = SimpleRouter(trailing_slash=False)
router.register("messages", MessageViewSet, basename="message")
router.register("media", MediaViewSet, basename="media")
router.register("conversations", ConversationViewSet, basename="conversation")
# Before "webhooks": its detail routes would otherwise read "deliveries" as an id.
router.register("webhooks/deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")

urlpatterns = router.urls
