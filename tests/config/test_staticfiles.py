"""The static storage keeps each file's hashed URL, and forgets them when files are collected."""

from __future__ import annotations

import shutil

import pytest
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from django.core.files.storage import storages
from django.core.management import call_command

from config.staticfiles import StaticFilesStorage


@pytest.fixture
def collected(settings, tmp_path):
    source = tmp_path / "static"
    shutil.copytree(settings.BASE_DIR / "static" / "css", source / "css")
    settings.STATICFILES_DIRS = [source]
    settings.STATIC_ROOT = tmp_path / "collected"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "config.staticfiles.StaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    return source


def test_urls_are_the_manifests_and_follow_a_new_collection(collected, settings):
    storage = storages["staticfiles"]
    assert isinstance(storage, StaticFilesStorage)
    stock = ManifestStaticFilesStorage()
    first = storage.url("css/site.css")
    assert first == stock.url("css/site.css") != "/static/css/site.css"
    assert storage.url("css/site.css") == first
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        storage.url("css/nothing-of-that-name.css")

    (collected / "css" / "site.css").write_text("body { color: black; }\n")
    call_command("collectstatic", interactive=False, verbosity=0)
    assert storage.url("css/site.css") not in (first, "/static/css/site.css")
    assert storage.url("css/site.css") == ManifestStaticFilesStorage().url("css/site.css")
