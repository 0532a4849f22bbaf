"""Every charge point a nostr agent: identity, discovery, zaps, DMs, operator commands."""
