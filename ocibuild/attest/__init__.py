"""Supply-chain documents for a built image: an SBOM from the lock (SPDX 2.3 or CycloneDX 1.6), SLSA v1
provenance, attached beside the image as OCI 1.1 referrers (``ocibuild.oci.artifact``).

Everything here is imported lazily: a plain build without ``--sbom`` never loads the document libraries.
"""
