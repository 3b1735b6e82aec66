"""A subscriber's trades as the API and the live WebSocket show them."""
