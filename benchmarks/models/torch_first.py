"""Import this before TensorFlow in any process that also uses PyTorch.

Loading torch/torchvision's native libraries after TensorFlow's segfaults (seen with torch 2.14 and
tensorflow-cpu 2.21 on Linux); loaded first, both work side by side.
"""

import timm  # noqa: F401  (pulls in torch and torchvision)
import torch  # noqa: F401
import torchvision  # noqa: F401
