"""Linli sync package."""
