"""Review reasons stored as sentences become reasons as data (`visits.reasons.ReviewReason.as_json`).

The sentences are read once, here, by the patterns the engine and settling wrote them in; their text is kept. A
sentence no pattern knows becomes `other`, with the event id it ends with (as the review page read it).
"""

import re

from django.db import migrations

EVENT = r"\((?P<event>[^()]+)\)"
PATTERNS = [
    ("unsure_taker", rf"unsure who took or returned items at bin (?P<bin>\S+) {EVENT}"),
    ("unseen_bin_change", rf"(?P<qty>\d+) × (?P<sku>\S+) left bin (?P<bin>\S+) unseen by cameras {EVENT}"),
    ("unseen_return", rf"(?P<qty>\d+) × (?P<sku>\S+) came back to bin (?P<bin>\S+) unseen {EVENT}"),
    ("bin_not_in_layout", rf"bin (?P<bin>\S+) is not in the layout of that time {EVENT}"),
    ("weight_matches_no_product", rf"the weight at bin (?P<bin>\S+) matches no product {EVENT}"),
    ("more_returned_than_taken", r"more (?P<sku>\S+) put back than taken"),
    ("age_unverified", r"(?P<sku>\S+) is for \d+\+ and no ID check of (?P<session>\S+) proved it"),
    ("no_entry", r"no session\.started for this visit"),
    ("companion_without_payer", r"entered as a companion of (?P<session>\S+), who is no payer that entered: who pays\?"),
    ("decided_with_group", r"one of the group paid by (?P<session>\S+): decided with it"),
    ("risk_over_limit", r"something on this receipt may not be this shopper's \(likelihood [^()]*\)"),
    ("no_price", r"(?P<sku>\S+): no price in \S+ at that time"),
    ("unreadable_event", rf"event of .+ cannot be read: .* {EVENT}"),
]
COMPILED = [(code, re.compile(pattern)) for code, pattern in PATTERNS]
ENDING_EVENT = re.compile(rf"{EVENT}\s*$")


def as_data(sentence: str) -> dict:
    for code, pattern in COMPILED:
        match = pattern.fullmatch(sentence.strip())
        if match:
            found = match.groupdict()
            break
    else:
        code, ending = "other", ENDING_EVENT.search(sentence)
        found = {"event": ending.group("event")} if ending else {}
    return {
        "code": code,
        "text": sentence,
        "event_ids": [found["event"]] if found.get("event") else [],
        "sku": found.get("sku"),
        "bin": found.get("bin"),
        "session": found.get("session"),
        "qty": int(found["qty"]) if found.get("qty") else None,
    }


def to_data(apps, schema_editor):
    visits = apps.get_model("visits", "Visit")._base_manager
    for visit in visits.exclude(review_reasons=[]).only("pk", "review_reasons").iterator(chunk_size=2000):
        reasons = visit.review_reasons or []
        if all(isinstance(reason, dict) for reason in reasons):
            continue
        converted = [reason if isinstance(reason, dict) else as_data(str(reason)) for reason in reasons]
        visits.filter(pk=visit.pk).update(review_reasons=converted)


def to_sentences(apps, schema_editor):
    visits = apps.get_model("visits", "Visit")._base_manager
    for visit in visits.exclude(review_reasons=[]).only("pk", "review_reasons").iterator(chunk_size=2000):
        sentences = [reason["text"] if isinstance(reason, dict) else reason for reason in visit.review_reasons or []]
        visits.filter(pk=visit.pk).update(review_reasons=sentences)


class Migration(migrations.Migration):
    dependencies = [("visits", "0007_visit_group_and_line_takers")]

    operations = [migrations.RunPython(to_data, to_sentences)]
