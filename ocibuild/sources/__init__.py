"""Sources: turn pinned inputs (Debian packages, interpreters, ...) into layer file trees. Imports ``oci`` only."""
