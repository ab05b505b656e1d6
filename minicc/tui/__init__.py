"""The terminal apps: ``minicc agent`` (the agent console) and ``minicc supervisor`` (the
wallboard). They talk to a running server only through its HTTP API (:mod:`minicc.tui.client`);
nothing here imports the switch or the store."""
