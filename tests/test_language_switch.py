"""The language switch: one button per other language, no "Change" step, works without
JavaScript, and keeps the customer on the page they were reading."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_one_press_switches_the_language_and_stays_on_the_page():
    client = Client()
    html = client.get(reverse("recover_help")).content.decode()
    footer = re.search(r'<footer class="footer">(.*?)</footer>', html, re.S).group(1)
    assert "Change" not in footer
    assert re.search(r'<button type="submit" class="link" name="language" value="de"', footer)
    assert 'aria-current="true">English<' in footer
    response = client.post(
        reverse("set_language"), {"language": "de", "next": reverse("recover_help")}
    )
    assert response["Location"] == reverse("recover_help")
    german = client.get(reverse("recover_help")).content.decode()
    assert '<html lang="de">' in german
    assert 'aria-current="true">Deutsch<' in german
