"""Development tools for coinecon; not part of the package."""
