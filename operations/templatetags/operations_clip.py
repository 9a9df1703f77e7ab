from django import template

from waplatform.admin_display import clip as clip_value

register = template.Library()


@register.filter
def clip(value, chars=40):
    """`{{ value|clip:60 }}`: cut to 60 characters, the whole value in a title."""
    return clip_value(value, int(chars))
