"""tinytensor_nn: modules, attention, positional encodings, the Transformer and the Vision Transformer,
built only from tinytensor's public ops."""
# ruff: noqa: F401, I001  (a package of re-exports, grouped by floor)
from .module import Module, ModuleDict, ModuleList, Parameter, ParameterDict, ParameterList, Sequential
from . import functional, init
from .layers import (
    ELU, GELU, GLU, Dropout, Embedding, Flatten, Hardswish, Hardtanh, Identity, LayerNorm, LeakyReLU, Linear,
    LogSigmoid, LogSoftmax, Mish, ReLU, ReLU6, RMSNorm, Sigmoid, SiLU, Softmax, Softplus, Tanh, Unflatten,
    CELU, SELU, Hardshrink, Hardsigmoid, PReLU, Softmax2d, Softmin, Softshrink, Softsign, Tanhshrink,
    Threshold, Dropout1d, Dropout2d,
)
from .conv import Conv1d, Conv2d
from .pooling import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from .upsampling import PixelShuffle, PixelUnshuffle, Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .padding import ConstantPad1d, ConstantPad2d, ConstantPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm
from .distance import CosineSimilarity, PairwiseDistance
from .losses import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from .positional import (
    LearnedPositionalEmbedding, RotaryEmbedding, RotaryEmbedding2D, SinusoidalPositionalEncoding,
    sinusoidal_table, sinusoidal_table_2d,
)
from .attention import KVCache, MultiheadAttention
from .transformer import (
    GPT, DecoderOnlyBlock, Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)
from .vit import PatchEmbedding, VisionTransformer
from . import optim, parallel, serialization, utils
from .serialization import CheckpointError, load, load_checkpoint, save, save_checkpoint
