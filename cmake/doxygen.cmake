# Filled in by the docs target change.
