"""The LineBox web admin: its own process (bottle on webui.wsgiserver) that reaches the box only through
firmware.api.localapi, so a crash here never drops a call (STYLE.md §10). See docs/web.md."""
