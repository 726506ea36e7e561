"""Routes of the browser flows and OpenID Connect: authorization, pages, userinfo, logout."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bastion.server.endpoints import device_verification, end_session, interaction, userinfo
from bastion.server.endpoints.authorize import authorization_endpoint, resume_endpoint
from bastion.server.pages import STATIC_DIR

BROWSER_ROUTES = [
    Route("/authorize", authorization_endpoint, methods=["GET", "POST"]),
    Route("/authorize/resume", resume_endpoint, methods=["GET"]),
    Route("/login", interaction.login_page, methods=["GET"]),
    Route("/login", interaction.login_submit, methods=["POST"]),
    Route("/login/mfa", interaction.mfa_page, methods=["GET"]),
    Route("/login/mfa", interaction.mfa_submit, methods=["POST"]),
    Route("/mfa/enrol", interaction.enrol_page, methods=["GET"]),
    Route("/mfa/enrol", interaction.enrol_submit, methods=["POST"]),
    Route("/consent", interaction.consent_page, methods=["GET"]),
    Route("/consent", interaction.consent_submit, methods=["POST"]),
    Route("/device", device_verification.device_page, methods=["GET"]),
    Route("/device", device_verification.device_submit, methods=["POST"]),
    Route("/device/consent", device_verification.device_consent_page, methods=["GET"]),
    Route("/device/consent", device_verification.device_consent_submit, methods=["POST"]),
    Route("/userinfo", userinfo.userinfo_endpoint, methods=["GET", "POST"]),
    Route("/logout", end_session.end_session_endpoint, methods=["GET"]),
    Route("/logout", end_session.end_session_submit, methods=["POST"]),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]
