"""tinytensor_nn: modules, attention, positional encodings, the Transformer and the Vision Transformer,
built only from tinytensor's public ops."""
# ruff: noqa: F401, I001  (a package of re-exports, grouped by floor)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from . import functional, init
from .layers import (
    GELU, Dropout, Embedding, Identity, LayerNorm, Linear, LogSoftmax, ReLU, RMSNorm, Sigmoid, SiLU, Softmax,
    Tanh,
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
from . import optim, serialization, utils
from .serialization import CheckpointError, load, load_checkpoint, save, save_checkpoint
