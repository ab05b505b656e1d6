"""The call center: IVR flows, queues and the ACD, agent states, wait estimates, statistics.

The decision modules are pure (no asyncio, sockets, clock or database; time is a ``now``
argument): :mod:`~minicc.queue.models` (queue config, members, waiting calls),
:mod:`~minicc.queue.agents` (the agent state machine), :mod:`~minicc.queue.acd` (which call
goes to which agent), :mod:`~minicc.queue.ewt` (estimated wait) and
:mod:`~minicc.queue.stats` (live statistics). An engine applies their decisions to the
switch. Nothing is imported here, so importing one module stays cheap.
"""
