"""Skin-lesion segmentation for dermoscopy images: train, check and predict lesion masks with a ResNet-34 U-Net

Modules:

- `skinseg.data`: Find image/mask pairs in any common dermoscopy layout, split them by lesion, check them, and feed them to fastai fast."""

__version__ = "0.1.0"
