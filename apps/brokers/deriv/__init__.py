"""Deriv (API v3 over WebSocket): adapter, protocol facts and a local simulator."""
