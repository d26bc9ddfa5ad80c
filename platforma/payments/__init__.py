"""Payments: individual account numbers, slips and QR codes, gateways, bank statements."""
