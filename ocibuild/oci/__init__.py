"""The OCI model and formats: digests, deterministic layers, images, indexes, layouts, archives, a blob store.

This package knows nothing of Cog; other builders can use it on its own (see docs/library.md).
"""

from ocibuild.oci.archive import write_archive
from ocibuild.oci.compression import Compression
from ocibuild.oci.descriptor import Descriptor, Platform
from ocibuild.oci.entries import Entry, EntryKind, entries_from_tree
from ocibuild.oci.image import History, Image, ImageConfig, Index, build_image, build_index
from ocibuild.oci.layer import LayerBlob, LayerRecipe, cached_layer, write_layer
from ocibuild.oci.layout import read_layout, write_layout
from ocibuild.oci.mediatypes import ImageFormat
from ocibuild.oci.store import Store

__all__ = [
    "Compression",
    "Descriptor",
    "Entry",
    "EntryKind",
    "History",
    "Image",
    "ImageConfig",
    "ImageFormat",
    "Index",
    "LayerBlob",
    "LayerRecipe",
    "Platform",
    "Store",
    "build_image",
    "build_index",
    "cached_layer",
    "entries_from_tree",
    "read_layout",
    "write_archive",
    "write_layer",
    "write_layout",
]
