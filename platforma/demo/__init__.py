"""The demo gmina "Gmina Przykładowo" and synthetic people shared with bench/."""
