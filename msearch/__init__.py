"""msearch: self-hosted multimodal media search."""

from msearch.media.torchvision_compat import install_import_hook

__version__ = "0.1.0"

# With the enhance extra installed, torchvision's mere presence would break transformers
# (and so the embedding engine) on machines where its compiled ops do not match torch.
install_import_hook()
