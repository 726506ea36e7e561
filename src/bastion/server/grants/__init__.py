"""Grant types the token endpoint serves, one module each (RFC 6749 §4)."""
