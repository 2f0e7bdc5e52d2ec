"""HTTP routes: thin handlers over the directory, conversions and storage."""
