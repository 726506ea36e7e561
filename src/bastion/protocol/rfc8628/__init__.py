"""RFC 8628: OAuth 2.0 Device Authorization Grant. https://www.rfc-editor.org/rfc/rfc8628

The sans-I/O rules of the grant: device and user codes (§3.2, §6.1), the normalisation of what
a person types (§6.1), the polling interval and `slow_down` arithmetic (§3.5), and the errors
of the token endpoint (§3.5).
"""

from bastion.protocol.rfc8628.codes import (
    DEVICE_CODE_BYTES,
    USER_CODE_ALPHABET,
    USER_CODE_LENGTH,
    format_user_code,
    generate_device_code,
    generate_user_code,
    normalize_user_code,
    user_code_space,
)
from bastion.protocol.rfc8628.errors import AuthorizationPending, ExpiredToken, SlowDown
from bastion.protocol.rfc8628.polling import SLOW_DOWN_INCREMENT, PollTiming, poll_timing

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"

__all__ = [
    "DEVICE_CODE_BYTES",
    "GRANT_TYPE",
    "SLOW_DOWN_INCREMENT",
    "USER_CODE_ALPHABET",
    "USER_CODE_LENGTH",
    "AuthorizationPending",
    "ExpiredToken",
    "PollTiming",
    "SlowDown",
    "format_user_code",
    "generate_device_code",
    "generate_user_code",
    "normalize_user_code",
    "poll_timing",
    "user_code_space",
]
