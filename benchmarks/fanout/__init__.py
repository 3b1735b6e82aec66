"""Fan-out benchmark: one signal to N subscriptions over M simulator accounts.

Starts the embedded stack (`copier up --detach` on free ports and a temporary DATA_DIR) or
uses a running one, seeds subscriptions in bulk through the API's projection functions,
sends signals through the public API (HTTP and WebSocket) and measures, from the
simulator's ledger (``purchase_time_ms``) and the client's clock (same machine):

- API accept latency of the signal, and of probe signals sent over HTTP and the
  WebSocket to a channel without subscribers while the fan-out runs;
- time from accept to the first and to the last order placed; per-order placement
  latency (accept → booked) p50/p95/p99; orders per second;
- CPU seconds per 1,000 orders and peak RSS (VmHWM) per service process.

The same accounts are then driven by the seed's design (:mod:`benchmarks.baseline_seed`)
and the table shows both and the ratio. Results go to benchmarks/results/<date>-fanout.json.

One module per concern: :mod:`.stack` (the stack it runs against), :mod:`.seeding`
(provider, channels, subscriptions), :mod:`.meters` (CPU, memory, probes, the ledger's
lag), :mod:`.run` (the runs and their order), :mod:`.report` (medians, targets, tables,
the JSON file) and :mod:`.command` (`copier bench`, mounted into the CLI through the
``copier.commands`` entry point: the benchmark imports the CLI's code, never the reverse).
This package's own import stays light, as `copier --help` loads the command.
"""
