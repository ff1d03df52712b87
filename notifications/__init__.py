"""Notifications: the outbox, its delivery by email and SMS, the burst guard and the dev inbox."""
