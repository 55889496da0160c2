"""tinytensor_nn: modules, attention, positional encodings, the Transformer and the Vision Transformer,
built only from tinytensor's public ops."""
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
