"""Linli server package."""
