"""Customer self-service recovery: email hint by phone, 2FA re-enrolment, cases, "not me"."""
