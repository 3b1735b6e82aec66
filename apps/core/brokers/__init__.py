"""What more than one service knows of a broker's protocol: each kind's login handshake.

The API verifies a broker account when it is linked and the kind's worker logs its
sessions in with the same call, so the request and the reading of its answer live here,
where both may import them (a service never imports another service's package). A broker
kind supplies one module: the login request, and a pure reading of the answer as the
account (login id, currency, balance) or the broker's refusal. Everything else of the
protocol stays in ``apps/brokers/<kind>/``.
"""
