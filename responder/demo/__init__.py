"""The case study's district, generated: `manage.py seed_demo` writes it (see seed.py)."""
