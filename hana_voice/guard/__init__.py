"""Guards that keep one client from stalling the service, holding its capacity or flooding it.

- :mod:`.audio`: caller audio enters a call in slices of at most 100 ms, no faster than real
  time beyond a burst allowance, through a queue bounded in bytes;
- :mod:`.log_limit`: log lines about bad client input, rate-limited per call;
- :mod:`.pending`: connections that have not authenticated yet, limited per address and in time.

docs/security.md holds the threat model these answer.
"""
