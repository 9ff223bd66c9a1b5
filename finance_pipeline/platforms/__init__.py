"""One folder per platform: client + dlt source (or publisher), emulator, webhook verifier."""
