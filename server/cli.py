def main():
    raise SystemExit("linli: the server CLI is not built yet")
