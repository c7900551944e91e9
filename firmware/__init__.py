"""LineBox firmware: the PBX daemon (sip, media, pbx, store, cli)."""
