"""RFC 7636: Proof Key for Code Exchange by OAuth Public Clients. https://www.rfc-editor.org/rfc/rfc7636

Only the `S256` method (RFC 9700 §2.1.1: `plain` gives no protection if the request leaks).
"""

from bastion.protocol.rfc7636.pkce import (
    S256,
    check_challenge,
    s256_challenge,
    verify_code_verifier,
)

__all__ = ["S256", "check_challenge", "s256_challenge", "verify_code_verifier"]
