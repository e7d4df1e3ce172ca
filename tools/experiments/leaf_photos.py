"""What the experiment scripts share: the photos of a folder (sub-folders
included, in a fixed order), a ResNet's BatchNorm statistics measured on
them, and tests/reference on the import path for clip_twin (safetensors
without the safetensors package)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "reference"))

# AgriCLIP's (and torchvision's) ImageNet mean and standard deviation
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def photos(folder):
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                yield os.path.join(root, name)


def measure_batchnorm(net, folder, size):
    """Sets NET's BatchNorm statistics to those of the photos of FOLDER,
    preprocessed as AgriCLIP does (resize SIZE bilinear, centre crop SIZE,
    ImageNet normalisation): a cumulative average over batches of 32.
    Returns how many photos."""
    import torch
    from PIL import Image
    from torchvision import transforms
    preprocess = transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize(*IMAGENET_MEAN_STD)])
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    net.train()
    paths = list(photos(folder))
    with torch.no_grad():
        for i in range(0, len(paths), 32):
            net(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[i:i + 32]]))
    return len(paths)
