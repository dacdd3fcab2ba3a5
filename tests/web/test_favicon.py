"""The site icon: a local SVG that every page links, also answering at /favicon.ico (no 404 in the logs)."""
from __future__ import annotations

import re


def test_favicon_ico_answers_with_the_svg_icon_without_signing_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.data.lstrip().startswith(b"<svg") and "联".encode() in response.data
    assert response.cache_control.max_age and response.cache_control.max_age >= 24 * 3600


def test_every_page_links_the_local_icon(client, sign_in, league):
    for page in (client.get("/login").text, None):
        if page is None:
            sign_in("zhang")
            page = client.get("/").text
        link = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page)
        assert link is not None and link.group(1) == "/static/favicon.svg"
        assert client.get(link.group(1)).status_code == 200
