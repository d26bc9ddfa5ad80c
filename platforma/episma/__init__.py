"""E-pisma: letters filed electronically with a signature, their receipts, the registry office and replies (issue 5)."""
