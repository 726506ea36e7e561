"""A logo URL joins the pages' CSP by its origin alone, on every page including the `form_post`
one; the app in process, with `[pages]` from settings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bastion.config import Settings, parse_pages
from bastion.server.pages.branding import branding_of
from bastion.server.pages.form_post import SCRIPT_HASH
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

LOGO_URL = "https://cdn.example:8443/brand/logo.png?v=2"
LOGO_CSP = "default-src 'self'; img-src 'self' https://cdn.example:8443; frame-ancestors 'none'"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, pages={"product_name": "Acme", "logo": LOGO_URL})


async def test_logo_url_origin_joins_img_src(http: httpx.AsyncClient) -> None:
    """The landing page shows the logo URL and allows exactly its origin for images."""
    response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == LOGO_CSP
    assert f'<img class="logo" src="{LOGO_URL}" alt="">' in response.text
    assert (await http.get("/branding/logo")).status_code == 404


def test_form_post_page_keeps_the_logo_origin() -> None:
    """The form_post page's script hash is added to the same policy, not to the default one."""
    branding = branding_of(parse_pages({"logo": LOGO_URL}))
    assert branding.csp_with(f"script-src '{SCRIPT_HASH}'") == (
        f"default-src 'self'; img-src 'self' https://cdn.example:8443; script-src '{SCRIPT_HASH}'; "
        "frame-ancestors 'none'"
    )
