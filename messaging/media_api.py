"""Media over HTTP: uploads (POST /api/v1/media), tenant-scoped downloads (GET /api/v1/media/{id})
and signed-link downloads (GET /media/{id}?expires=&signature=, no API key). Thin: parse,
authorise, call a service or stream from storage. Both downloads honour HTTP range requests
(audio and video players seek with them)."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from messaging.media import links, storage
from messaging.media.limits import UPLOAD_KINDS_HELP, MediaRefused
from messaging.models import MediaFile
from messaging.services import media as media_services
from messaging.services.payloads import media_fields
from tenants.api_base import TenantScopedViewSet

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class MediaRefusedError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, exc: MediaRefused):
        if exc.code == "media_too_large":
            self.status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        super().__init__(detail=exc.detail, code=exc.code)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False, error_messages={"required": "Send the file as the multipart "
                                                                                     "part named \"file\"."})
    type = serializers.ChoiceField(choices=list(media_services.UPLOAD_KINDS), required=False,
                                   help_text=UPLOAD_KINDS_HELP)
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True)


class MediaFileSerializer(serializers.Serializer):
    """For the schema: the answer is messaging.services.payloads.media_fields, as in messages."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    kind = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    filename = serializers.CharField()
    url = serializers.URLField(help_text="Signed, expiring download link (no API key needed)")
    expires_at = serializers.DateTimeField()


class MediaViewSet(mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Upload files to send by id; download the tenant's files (inbound and uploaded)."""

    queryset = MediaFile.objects.all()
    serializer_class = MediaFileSerializer
    parser_classes = [MultiPartParser, FormParser]
    lookup_value_regex = r"\d+"

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: MediaFileSerializer})
    def create(self, request):
        data = UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            upload = media_services.upload_media(tenant=self.tenant, upload=v["file"], kind=v.get("type", ""),
                                                 filename=v.get("filename", ""))
        except MediaRefused as exc:
            raise MediaRefusedError(exc) from None
        return Response(media_fields(upload.media), status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   (206, "application/octet-stream"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("variant", str, enum=["thumb"], required=False),
                    OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False)],
    )
    def retrieve(self, request, pk=None):
        """The file's bytes (or its thumbnail with ?variant=thumb); `Range: bytes=a-b` gives 206."""
        media = self.get_object()
        return serve_bytes(request, media, variant=request.query_params.get("variant", ""))


def serve_bytes(request: HttpRequest, media: MediaFile, *, variant: str) -> HttpResponse:
    if media.status != MediaFile.Status.STORED:
        reason = f": {media.reason}" if media.reason else ""
        raise NotFound(f"Media {media.pk} is {media.status}, so it has no bytes to download{reason}.",
                       code=f"media_{media.status}")
    key = media.thumbnail_key if variant == "thumb" else media.storage_key
    if variant == "thumb" and not key:
        raise NotFound("This media has no thumbnail (only images and stickers do).", code="no_thumbnail")
    size = media.size if variant != "thumb" else storage.media_storage().size(key)
    content_type = "image/jpeg" if variant == "thumb" else (media.content_type or "application/octet-stream")
    start, end = 0, size - 1
    status_code = 200
    header = request.headers.get("Range", "")
    if header:
        parsed = _parse_range(header, size)
        if parsed is None:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, end = parsed
        status_code = 206
    length = max(0, end - start + 1)
    response = StreamingHttpResponse(storage.iter_range(key, start, length), status=status_code,
                                     content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{media.sha256}{"-thumb" if variant else ""}"'
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    if status_code == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    if media.original_filename and variant != "thumb":
        disposition = "inline" if media.kind in ("image", "sticker", "audio", "video") else "attachment"
        safe = media.original_filename.replace('"', "").replace("\\", "")
        response["Content-Disposition"] = f'{disposition}; filename="{safe}"'
    return response


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=` range (what players send); None when unsatisfiable or several."""
    match = _RANGE.match(header.strip())
    if not match or size == 0:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            return None
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


@require_http_methods(["GET", "HEAD"])
def signed_download(request: HttpRequest, media_id: int) -> HttpResponse:
    """GET /media/{id}?expires=&signature=: the link in media.url; the signature is the authority."""
    variant = request.GET.get("variant", "")
    try:
        links.verify(media_id, variant=variant, expires=request.GET.get("expires", ""),
                     signature=request.GET.get("signature", ""))
    except links.LinkRefused as exc:
        return JsonResponse({"code": exc.code, "detail": exc.detail}, status=403)
    media = MediaFile.objects.filter(pk=media_id).first()
    if media is None:
        return JsonResponse({"code": "not_found", "detail": "No such media."}, status=404)
    try:
        return serve_bytes(request, media, variant=variant)
    except NotFound as exc:
        return JsonResponse({"code": exc.get_codes(), "detail": str(exc.detail)}, status=404)
