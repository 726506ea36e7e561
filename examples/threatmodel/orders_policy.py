"""The orders service's route policy (the shop example): each route and the scope it requires.

The example model's mitigation of BT-E04 on the orders service ("scope checks on every route
through the shared policy module") points at this table, and its evidence,
`tests/test_orders_policy.py`, checks it. In a real service this is the table the app's guard is
built from (`bastion.guard`: every route declares its requirement or the app does not start).
"""

ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/orders"): "orders:read",
    ("GET", "/orders/{order_id}"): "orders:read",
    ("PATCH", "/orders/{order_id}"): "orders:write",
    ("POST", "/admin/orders/{order_id}/cancel"): "orders:admin",
}
