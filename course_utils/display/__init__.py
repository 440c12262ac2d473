"""Showing results: result tables and shared plots."""
