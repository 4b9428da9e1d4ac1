"""Template filters `share` and `seconds` (service_levels.words)."""

from __future__ import annotations

from django import template

from service_levels.words import seconds, share

register = template.Library()
register.filter("share", share)
register.filter("seconds", seconds)
