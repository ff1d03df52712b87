"""Accounts: users, mandatory 2FA, security audit, security holds and mass 2FA revocation."""
