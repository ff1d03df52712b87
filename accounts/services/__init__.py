"""Services of the accounts app: every write, each in its own transaction."""
