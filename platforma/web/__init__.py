"""Base templates, static assets, filters, error pages and the published legal pages."""
