"""HTTP endpoints of the authorization server, one module each."""
