"""RFC 6750: OAuth 2.0 Bearer Token Usage. https://www.rfc-editor.org/rfc/rfc6750

How a request presents its access token (§2: the Authorization header, or the form body where
an endpoint accepts it; never the query string) and how a refusal is answered (§3: the
`WWW-Authenticate: Bearer` challenge with `error`, `error_description` and `scope`).
"""

from bastion.protocol.rfc6750.challenge import ErrorResponse, render_error
from bastion.protocol.rfc6750.credentials import B64TOKEN, FORM_PARAMETER, Credentials, extract_credentials

__all__ = ["B64TOKEN", "FORM_PARAMETER", "Credentials", "ErrorResponse", "extract_credentials", "render_error"]
