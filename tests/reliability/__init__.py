"""Reliability tests: many clients racing on one task, one wish, one timer (PostgreSQL)."""
