from django.urls import path

from messaging import media_api

# Signed links (media.url): no API key, the signature is the authority (docs/media.md).
urlpatterns = [path("<int:media_id>", media_api.signed_download, name="media-signed")]
