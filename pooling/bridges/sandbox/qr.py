"""QR rendering, imported only when a QR is asked for: qrcode and PIL cost memory."""

from __future__ import annotations

import io


def render_png(value: str) -> bytes:
    import qrcode

    image = qrcode.make(value, box_size=6, border=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
