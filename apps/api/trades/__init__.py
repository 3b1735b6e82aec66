"""A subscriber's trades: the history (JSON and CSV) and the one encoding of a trade."""
