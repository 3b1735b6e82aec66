"""The IQ Option broker: its worker's adapter (protocol, session, settlement watch)."""
