"""Speech engines: small Protocols, one adapter module per blocking engine, and the runner."""
