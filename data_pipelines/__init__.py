"""Host-side data preparation (numpy/PIL), usable inside grain `map` transforms."""
