"""Skin-lesion segmentation for dermoscopy images: train, check and predict lesion masks with a ResNet-34 U-Net

Modules:

- `skinseg.basics`: Errors that name the file, writes that never leave half a file, and the fix a CPU PyTorch needs beside a CUDA torchvision.
- `skinseg.cli`: The `skinseg` command: one verb per task, each a thin wrapper over the library.
- `skinseg.core`: `predict`: a lesion mask at each image's own size, from a path, a PIL image or an array; and `skinseg predict` for folders.
- `skinseg.data`: Find image/mask pairs in any common dermoscopy layout, split them by lesion, check them, and presize them once.
- `skinseg.download`: Download HAM10000 from Harvard Dataverse: resumable, MD5-checked, unpacked into the official layout.
- `skinseg.export`: Export a trained model to ONNX or TorchScript, check that it predicts the same masks, and run an ONNX model with onnxruntime.
- `skinseg.images`: Read dermoscopy images and lesion masks as arrays, and tell image files from mask files by their names.
- `skinseg.loaders`: fastai `DataBlock` and `DataLoaders` for image/mask pairs: presized once, augmented a whole batch at a time.
- `skinseg.metrics`: Dice, Jaccard (IoU) and the ISIC threshold Jaccard, per image and pooled; fastai metrics; and `skinseg evaluate`.
- `skinseg.model`: Build the ResNet-34 U-Net, store it as safetensors plus a JSON config, and load it back, exported ONNX and TorchScript files included.
- `skinseg.synthetic`: A small synthetic dermoscopy-like dataset, so examples and tests run where no real data is.
- `skinseg.train`: The ResNet-34 U-Net training recipe as a fastai `Learner`: loss, metrics, schedule, per-epoch checkpoints without pickle, `--resume` after a crash, the best model kept, and multi-process training.
- `skinseg.tune`: Choose a model's inference defaults (test-time augmentation, post-processing) by measuring them on its validation images.
- `skinseg.viz`: Look at predictions: mask overlays, error maps against the ground truth, the worst cases, and training curves."""

__version__ = "0.1.0"
