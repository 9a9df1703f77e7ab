"""The page at /: where "View site" in the admin lands, and where a new operator starts."""

from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def landing(request):
    return render(request, "landing.html")
