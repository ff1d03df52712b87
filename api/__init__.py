"""Service API: what the exchange must restrict on an account, for service-token holders."""
