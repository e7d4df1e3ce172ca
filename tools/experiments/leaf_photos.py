"""What the experiment scripts share: the photos of a folder (sub-folders
included, in a fixed order), AgriCLIP's preprocessing of them, a ResNet-50
of given tensors, its BatchNorm statistics measured on photos, and
tests/reference on the import path for clip_twin (safetensors without the
safetensors package)."""
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


def agriclip_preprocess(size):
    """AgriCLIP's preprocessing at SIZE: resize bilinear, centre crop,
    ImageNet normalisation (a PIL image -> a [3, SIZE, SIZE] tensor)."""
    from torchvision import transforms
    return transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize(*IMAGENET_MEAN_STD)])


def resnet50(state):
    """A torchvision ResNet-50 without its fc (it gives the pooled features)
    holding the tensors of STATE; with the names it lacks from STATE
    (num_batches_tracked aside) and those STATE has beyond it."""
    import torch
    import torchvision
    net = torchvision.models.resnet50(weights=None)
    net.fc = torch.nn.Identity()
    missing, unexpected = net.load_state_dict(state, strict=False)
    return net, [k for k in missing if not k.endswith("num_batches_tracked")], unexpected


def measure_batchnorm(net, folder, size):
    """Sets NET's BatchNorm statistics to those of the photos of FOLDER,
    preprocessed as AgriCLIP does (agriclip_preprocess): a cumulative
    average over batches of 32.  Returns how many photos."""
    import torch
    from PIL import Image
    preprocess = agriclip_preprocess(size)
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
