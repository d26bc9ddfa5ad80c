"""Taxes and fees: taxpayers, liabilities, installments, ledger, interest."""
