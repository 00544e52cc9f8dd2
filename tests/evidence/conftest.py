from tests.evidence.evidence_helpers import evidence_roots  # noqa: F401
