#!/usr/bin/env python3
"""onnx_quantize_dynamic.py - the int8 anchor model for bench/run_int8_bench.sh.

onnxruntime's own `onnxruntime.quantization.quantize_dynamic` is Python-only and the onnxruntime Python package is not
installable on these machines (no PyPI; Debian has no python3-onnxruntime). This script writes, with Debian's
python3-onnx, the graph quantize_dynamic writes by default for a MatMul whose second input is a constant weight
(QOperator format, weight_type QInt8, per_channel False, reduce_range False):

    A -> DynamicQuantizeLinear -> (A_u8, A_scale, A_zp)
    MatMulInteger(A_u8, W_i8, A_zp, W_zp = 0) -> Cast(float) -> Mul(A_scale * W_scale)

with W_scale = max|W| / 127 per tensor and W_i8 = round(W / W_scale) (symmetric int8). onnxruntime-node's graph
optimizer (level 'all') fuses this into its DynamicQuantizeMatMul kernel (u8 x s8, VNNI where present). MatMuls between
two activations (attention scores and context) stay float, as quantize_dynamic's MatMul rule needs a weight.
Usage: onnx_quantize_dynamic.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    src, dst = sys.argv[1], sys.argv[2]
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, new_inits, nq = [], [], 0
    for node in g.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        W = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        if W.ndim != 2:
            new_nodes.append(node)
            continue
        amax = float(np.abs(W).max())
        ws = amax / 127.0 if amax > 0 else 1.0
        Wq = np.clip(np.rint(W / ws), -127, 127).astype(np.int8)
        p = f"{node.name or node.output[0]}_q{nq}"
        nq += 1
        new_inits += [numpy_helper.from_array(Wq, p + "_W_i8"), numpy_helper.from_array(np.array(0, np.int8), p + "_W_zp"),
                      numpy_helper.from_array(np.array(ws, np.float32), p + "_W_scale")]
        a = node.input[0]
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [a], [p + "_A_u8", p + "_A_scale", p + "_A_zp"], name=p + "_dql"),
            helper.make_node("MatMulInteger", [p + "_A_u8", p + "_W_i8", p + "_A_zp", p + "_W_zp"], [p + "_i32"], name=p + "_mmi"),
            helper.make_node("Cast", [p + "_i32"], [p + "_f32"], to=TensorProto.FLOAT, name=p + "_cast"),
            helper.make_node("Mul", [p + "_A_scale", p + "_W_scale"], [p + "_scale"], name=p + "_mulscale"),
            helper.make_node("Mul", [p + "_f32", p + "_scale"], [node.output[0]], name=p + "_mul"),
        ]
    used = {i for n in new_nodes for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    print(f"{dst}: {nq} MatMuls quantized (DynamicQuantizeLinear + MatMulInteger, per-tensor int8 weights)", file=sys.stderr)


if __name__ == "__main__":
    main()
