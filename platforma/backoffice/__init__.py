"""The clerks' area: its shell, dashboard and the menu that modules add to."""
