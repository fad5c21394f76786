"""Quantisation-aware fine-tuning (train.py --qat): Paddle's QAT (paddle.quantization) puts fake int8
quantisation on every convolution of the depth network, so that training adapts the weights to the
rounding that export.py --precision int8 applies afterwards.

Per convolution, with r = 2^(bits-1) - 1 = 127:
    weights, per output channel c:  s_c = max |w_c|,  w_c -> round(w_c / s_c * r) * s_c / r
        (Paddle's fake_channel_wise_quantize_dequantize_abs_max; gradients pass straight through). As a
        per-channel scale commutes with it, this is also the rounding of the convolution with a batch
        norm folded in, as the exported model has it.
    input activation, per tensor:  s = accum / state, updated in training as
        state <- m state + 1,  accum <- m accum + max |x|   (m = 0.9; Paddle's FakeQuanterWithAbsMaxObserver)
        x -> round(clip(x, -s, s) / s * r) * s / r
The attention's K/Q/V run as one convolution with the three kernels stacked (networks/attention.py):
QuantedGlobalAttention rounds that stacked kernel and its input the same way.

The quantisers keep their state out of the state dict (non-persistable buffers): the weights a --qat run
saves are plain float weights that load anywhere; export.py --precision int8 calibrates its activation
ranges afresh on photos.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle import _C_ops
from paddle.nn.quant.qat import QuantedConv2D
from paddle.quantization import QAT, QuantConfig
from paddle.quantization.base_quanter import BaseQuanter
from paddle.quantization.factory import QuanterFactory
from paddle.quantization.quanters.abs_max import FakeQuanterWithAbsMaxObserverLayer

from networks.attention import GlobalAttention

BITS = 8
MOVING_RATE = 0.9


class ChannelWeightQuanterLayer(BaseQuanter):
    """Symmetric per-output-channel fake quantisation of a weight (axis 0), scales from the weight itself."""

    def __init__(self, layer, bit_length=BITS):
        super().__init__()
        self._bit_length = bit_length

    def forward(self, weight):
        out, _ = _C_ops.fake_channel_wise_quantize_dequantize_abs_max(weight, self._bit_length, 1, 0)
        return out

    def scales(self):
        return None  # recomputed from the weight at every call

    def zero_points(self):
        return None

    def quant_axis(self):
        return 0

    def bit_length(self):
        return self._bit_length


class ActivationQuanterLayer(FakeQuanterWithAbsMaxObserverLayer):
    """Paddle's moving-average abs-max fake quantiser whose scale, state and accumulator are
    non-persistable buffers: they stay out of the state dict (and out of the optimiser)."""

    def __init__(self, layer, moving_rate=MOVING_RATE, bit_length=BITS):
        super().__init__(layer, moving_rate=moving_rate, bit_length=bit_length)
        for name in ("_scale", "_state", "_accum"):
            self.register_buffer(name, paddle.to_tensor(self._parameters.pop(name).numpy()), persistable=False)


class ChannelWeightQuanter(QuanterFactory):
    def __init__(self, bit_length=BITS):
        super().__init__(bit_length=bit_length)

    def _get_class(self):
        return ChannelWeightQuanterLayer


class ActivationQuanter(QuanterFactory):
    def __init__(self, moving_rate=MOVING_RATE, bit_length=BITS):
        super().__init__(moving_rate=moving_rate, bit_length=bit_length)

    def _get_class(self):
        return ActivationQuanterLayer


class QuantedGlobalAttention(GlobalAttention):
    """GlobalAttention whose stacked K/Q/V convolution and 1x1 convolution are fake-quantised. It holds the
    original layers under the original names, so its state dict is GlobalAttention's."""

    def __init__(self, layer, q_config):
        nn.Layer.__init__(self)
        self.K, self.Q, self.V = layer.K, layer.Q, layer.V
        self.local_weight = QuantedConv2D(layer.local_weight, q_config)
        self.kqv_weight_quanter = q_config.weight._instance(layer)
        self.kqv_activation_quanter = q_config.activation._instance(layer)

    def kqv(self, x):
        kernel = paddle.concat([self.K.weight, self.Q.weight, self.V.weight])
        return F.conv2d(self.kqv_activation_quanter(x), self.kqv_weight_quanter(kernel), padding=1)


def quant_config():
    """Fake int8 on every Conv2D (QuantedConv2D) and on the global attention (QuantedGlobalAttention)."""
    config = QuantConfig(activation=None, weight=None)
    config.add_type_config([nn.Conv2D, GlobalAttention], activation=ActivationQuanter(), weight=ChannelWeightQuanter())
    config.add_qat_layer_mapping(GlobalAttention, QuantedGlobalAttention)
    return config


def quantize_for_training(net):
    """Put fake int8 quantisation into `net` in place (training mode); returns a one-line summary."""
    net.train()
    QAT(quant_config()).quantize(net, inplace=True)
    convs = sum(isinstance(m, QuantedConv2D) for m in net.sublayers())
    attention = sum(isinstance(m, QuantedGlobalAttention) for m in net.sublayers())
    return (f"--qat: fake int8 (per-channel weights, per-tensor inputs) on {convs} convolutions and "
            f"{attention} stacked K/Q/V attention convolutions")
