"""Accounts: users, roles, local login with two-factor authentication, links to taxpayers."""
