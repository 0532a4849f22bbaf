"""Every charge point a nostr agent: identity, discovery, zaps, DMs, operator commands.

* :mod:`strom_nostr` - the pure protocol core (no I/O).
* :mod:`agent.runtime` - :class:`~agent.runtime.AgentRuntime`, what the composition root wires.
* :mod:`agent.supervisor`, :mod:`agent.agent` - one actor per charger, restarted on failure.
* :mod:`agent.relays` - the relay pool over one shared nostr-sdk client
  (:mod:`agent.nostr_sdk_adapter` is the only module that imports nostr-sdk).
* :mod:`agent.identity`, :mod:`agent.sealing` - charger keys on disk, optionally sealed.
* :mod:`agent.zaps`, :mod:`agent.conversations`, :mod:`agent.operator`,
  :mod:`agent.notifications` - what an agent does with receipts, DMs and session news; they
  take a narrow context (:mod:`agent.context`), never the agent itself.
* :mod:`agent.presence`, :mod:`agent.messages` - what it publishes and says (pure).
* :mod:`agent.store`, :mod:`strom_storage.agents` - its DM journal and session secrets (in Strom's
  database, through :mod:`strom_storage.agent_journal`) and its database queries;
  :mod:`agent.legacy_store` imports the private file of earlier versions once.
"""
