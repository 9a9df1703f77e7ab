from django.urls import path

from mirror import api

urlpatterns = [
    path("firebase/token", api.FirebaseTokenView.as_view(), name="api-firebase-token"),
]
