"""How the admins write dates and times: with the clock named ("4 Dec 2026 02:25 UTC"). Django's English default,
"Dec. 4, 2026, 2:25 a.m.", said nothing of which clock, beside pages that give store times with their zone."""

DATETIME_FORMAT = "j M Y H:i T"
DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
