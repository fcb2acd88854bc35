"""Helpers shared by integration and end-to-end tests: demo events, publishing, scraping."""
