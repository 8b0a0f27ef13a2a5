"""The live preview under the template limits: a template over a limit comes back quickly with
the error next to its field, and each signed-in user gets a bounded number of previews (429
past it), one at a time."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from reminders.web.staff.templates import PREVIEWS_PER_10S
from tests.staff.conftest import SignedIn, sign_in

PREVIEW = "/staff/templates/day_before/sms/en/preview"
VALID_SMS = "Hi {{ patient.first_name }}, see you {{ session.date }}. Reply C to confirm."


def test_preview_answers_429_past_the_rate_limit_per_user(
    staff_client: SignedIn, app_client: TestClient, make_user: Callable[..., str]
) -> None:
    for _ in range(PREVIEWS_PER_10S):
        response = staff_client.post(PREVIEW, {"body": VALID_SMS})
        assert response.status_code == 200
        assert "Hi Alex" in response.text
    refused = staff_client.post(PREVIEW, {"body": VALID_SMS})
    assert refused.status_code == 429
    assert refused.text == "Too many previews: wait a few seconds."
    assert refused.headers["Retry-After"] == "2"
    # Another user is not held back by this one.
    other = sign_in(app_client, make_user("nurse@clinic.test", "staff"))
    assert other.post(PREVIEW, {"body": VALID_SMS}).status_code == 200


def test_preview_of_a_template_over_a_limit_shows_the_error_quickly(
    staff_client: SignedIn,
) -> None:
    attacks = {
        "{% for a in range(10**9) %}{% endfor %}Hi": "range() over 1,000 items",
        "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}": (
            "loops over 10,000 steps"
        ),
        "{{ 'x'.ljust(10000000000) }}": "ljust() width over 65,536",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}": "calls nested over 20 deep",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
        "{% endmacro %}{{ f(18) }}": "took longer than 0.5 s",
    }
    for body, says in attacks.items():
        start = time.perf_counter()
        response = staff_client.post(PREVIEW, {"body": body})
        took = time.perf_counter() - start
        assert response.status_code == 200
        assert took < 3.0, f"{says}: {took:.2f} s"
        assert "template limit: " + says in response.text, response.text
        assert "No preview: fix the errors first." in response.text
