from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from operations import views as operations_views
from tenants.auth_failures import throttled_sign_in
from waplatform import health, landing

admin.site.site_header = "WA Platform operations"
admin.site.site_title = "WA Platform"

api_v1 = [
    path("", include("tenants.urls")),
    path("", include("pooling.urls")),
    # Before messaging: agents adds PATCH /conversations/{id}, /handoff and /resume.
    path("", include("agents.urls")),
    path("", include("messaging.urls")),
    path("", include("mirror.urls")),
]

urlpatterns = [
    path("", landing.landing, name="landing"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="swagger-ui",
    ),
    path("hooks/", include("messaging.hook_urls")),
    path("media/", include("messaging.media_urls")),
    path("inbox/", include("inbox.urls")),
    path("metrics", operations_views.metrics_view, name="metrics"),
    path("admin/operations/", include("operations.urls")),
    path("admin/rq/", include("django_rq.urls")),
    # Before admin.site.urls, which would match it first: failed sign-ins are throttled per address.
    path("admin/login/", throttled_sign_in(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
]

if settings.BENCH_BARE_VIEW:
    from waplatform.bench_view import bare

    urlpatterns.append(path("bench/bare", bare, name="bench-bare"))

# JSON under /api/ and /hooks/, Django's pages elsewhere (waplatform/api_errors.py).
handler400 = "waplatform.api_errors.bad_request"
handler500 = "waplatform.api_errors.server_error"
