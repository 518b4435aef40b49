"""The Asterisk Manager Interface: framing, client, actions."""
