"""Accounts: users, mandatory 2FA, security audit and the notification outbox."""
