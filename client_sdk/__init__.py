"""Linli client_sdk package."""
