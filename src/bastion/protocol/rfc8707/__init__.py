"""RFC 8707: Resource Indicators for OAuth 2.0. https://www.rfc-editor.org/rfc/rfc8707"""

from bastion.protocol.rfc8707.resource import select_audience

__all__ = ["select_audience"]
