"""Skin-lesion segmentation for dermoscopy images: train, check and predict lesion masks with a ResNet-34 U-Net

Modules:

- `skinseg.basics`: Errors that name the file, writes that never leave half a file, and the fix a CPU PyTorch needs beside a CUDA torchvision.
- `skinseg.checkpoint`: Per-epoch checkpoints without pickle, the best model kept, and a CSV log that survives `--resume`.
- `skinseg.cli`: The `skinseg` command: one verb per task, each a thin wrapper over the library.
- `skinseg.core`: `predict`: a lesion mask at each image's own size, from a path, a PIL image or an array; and `skinseg predict` for folders.
- `skinseg.data`: Read every image/mask pair in full: check a dataset (`skinseg check`) and presize it for training.
- `skinseg.demo`: `skinseg demo`: the main job on an embedded default, trained, predicted, scored and drawn in a few minutes.
- `skinseg.download`: Download HAM10000 from Harvard Dataverse: resumable, MD5-checked, unpacked into the official layout.
- `skinseg.export`: Export a trained model to ONNX or TorchScript, check that it predicts the same masks, and run an ONNX model with onnxruntime.
- `skinseg.images`: Read dermoscopy images and lesion masks as arrays, and tell image files from mask files by their names.
- `skinseg.layouts`: Find image/mask pairs in any common dermoscopy layout: HAM10000, ISIC, PH2, nnU-Net, images/ + masks/.
- `skinseg.learner`: The recipe's fastai `Learner`: the ResNet-34 U-Net, cross-entropy + Dice, AdamW, per-image metrics, bfloat16 and channels-last.
- `skinseg.loaders`: fastai `DataBlock` and `DataLoaders` for image/mask pairs: presized once, augmented a whole batch at a time.
- `skinseg.metrics`: Dice, Jaccard (IoU) and the ISIC threshold Jaccard, per image and pooled; fastai metrics; and `skinseg evaluate`.
- `skinseg.model`: Build the ResNet-34 U-Net, store it as safetensors plus a JSON config, and load it back, exported ONNX and TorchScript files included.
- `skinseg.splits`: Split image/mask pairs by lesion into training and validation (or K folds), and read a split back.
- `skinseg.synthetic`: A small synthetic dermoscopy-like dataset, so examples and tests run where no real data is.
- `skinseg.train`: Train the U-Net from a dataset folder: schedule, split, checkpoints, `--resume`, multi-process; `skinseg train`.
- `skinseg.tune`: Choose a model's inference defaults (decision threshold, test-time augmentation, post-processing) by measuring them on labelled images it did not train on.
- `skinseg.viz`: Look at predictions: mask overlays, error maps against the ground truth, the worst cases, and training curves."""

__version__ = "0.1.0"
