"""Background workers: each advances durable rows and exposes run_once() for tests."""
