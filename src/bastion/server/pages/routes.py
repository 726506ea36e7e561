"""The browser's routes: the authorization endpoint, its resumption, every page, the stylesheets."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bastion.server.endpoints.authorize import authorization_endpoint, resume_endpoint
from bastion.server.pages import STATIC_DIR, branding, consent, device, landing, login, logout, mfa

PAGE_ROUTES = [
    Route("/authorize", authorization_endpoint, methods=["GET", "POST"]),
    Route("/authorize/resume", resume_endpoint, methods=["GET"]),
    Route("/authorize/cancel", login.back_to_client, methods=["POST"]),
    Route("/", landing.landing_page, methods=["GET"]),
    Route("/branding.css", branding.stylesheet_endpoint, methods=["GET"]),
    Route("/branding/logo", branding.logo_endpoint, methods=["GET"]),
    Route("/login", login.login_page, methods=["GET"]),
    Route("/login", login.login_submit, methods=["POST"]),
    Route("/login/mfa", mfa.mfa_page, methods=["GET"]),
    Route("/login/mfa", mfa.mfa_submit, methods=["POST"]),
    Route("/mfa/enrol", mfa.enrol_page, methods=["GET"]),
    Route("/mfa/enrol", mfa.enrol_submit, methods=["POST"]),
    Route("/mfa/recovery-codes.txt", mfa.recovery_codes_download, methods=["POST"]),
    Route("/consent", consent.consent_page, methods=["GET"]),
    Route("/consent", consent.consent_submit, methods=["POST"]),
    Route("/device", device.device_page, methods=["GET"]),
    Route("/device", device.device_submit, methods=["POST"]),
    Route("/device/consent", device.device_consent_page, methods=["GET"]),
    Route("/device/consent", device.device_consent_submit, methods=["POST"]),
    Route("/logout", logout.end_session_endpoint, methods=["GET"]),
    Route("/logout", logout.end_session_submit, methods=["POST"]),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]

__all__ = ["PAGE_ROUTES"]
